//! Durations on iocluster's command lines, one meaning for every binary:
//! anything [humantime] reads (`500ms`, `10s`, `2m`, `1h 30m`), or a bare
//! number of milliseconds, as Node's socket.io options take them.
//!
//! ```
//! use std::time::Duration;
//! use iocluster_duration::{CliDuration, parse};
//! assert_eq!(parse("25000"), Ok(Duration::from_secs(25)));
//! assert_eq!(parse("2m"), Ok(Duration::from_secs(120)));
//! assert_eq!(CliDuration(Duration::from_millis(1500)).to_string(), "1s 500ms");
//! ```
#![deny(missing_docs)]

use std::time::Duration;

/// Parses a duration: a bare number is milliseconds, anything else goes to
/// [`humantime::parse_duration`]. The error is one sentence for the user.
pub fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text
            .parse()
            .map(Duration::from_millis)
            .map_err(|_| format!("{text:?} is too large a number of milliseconds"));
    }
    humantime::parse_duration(text)
        .map_err(|error| format!("{text:?} is not a duration like 500ms, 10s or 2m ({error})"))
}

/// A duration as a command-line value: parsed by [`parse`], shown the way
/// humantime writes it (`25s`, `1s 500ms`), so clap can show defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct CliDuration(pub Duration);

impl std::fmt::Display for CliDuration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_zero() {
            return f.write_str("0ms");
        }
        humantime::format_duration(self.0).fmt(f)
    }
}

impl std::str::FromStr for CliDuration {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        parse(text).map(CliDuration)
    }
}

impl From<CliDuration> for Duration {
    fn from(value: CliDuration) -> Duration {
        value.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_number_is_milliseconds_and_units_are_read() {
        assert_eq!(parse("300"), Ok(Duration::from_millis(300)));
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse("1h 30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse(" 2m "), Ok(Duration::from_secs(120)));
    }

    #[test]
    fn nonsense_is_refused_with_a_sentence() {
        for bad in [
            "",
            "ten seconds",
            "10 parsecs",
            "-5s",
            "99999999999999999999999",
        ] {
            let error = parse(bad).unwrap_err();
            assert!(
                error.contains("duration") || error.contains("milliseconds"),
                "{error}"
            );
        }
    }

    #[test]
    fn defaults_are_shown_in_a_form_parse_reads_back() {
        for duration in [
            Duration::ZERO,
            Duration::from_millis(1500),
            Duration::from_secs(25),
            Duration::from_secs(120),
        ] {
            let shown = CliDuration(duration).to_string();
            assert_eq!(parse(&shown), Ok(duration), "{shown}");
        }
    }
}
