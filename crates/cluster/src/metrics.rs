//! Metrics as the workers report them and the master exposes them: one
//! scrape of the admin endpoint's `/metrics` gives the whole node, the
//! master's own families and every worker's, each worker's samples labelled
//! `worker="<slot>"` (a slot keeps its label across restarts).
//!
//! Workers send their families in their report (names, help, samples); the
//! master encodes them with `prometheus-client` in the OpenMetrics text
//! format, one family per name whatever the number of workers.

use std::collections::BTreeMap;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use serde::{Deserialize, Serialize};

/// Label pairs of one sample.
pub type Labels = Vec<(String, String)>;

/// One metric family, with its samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    /// The family name, without `_total` for counters (the encoding adds
    /// it).
    pub name: String,
    /// What it counts.
    pub help: String,
    /// Its type and samples.
    pub values: Values,
}

/// A family's type and samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "samples", rename_all = "snake_case")]
pub enum Values {
    /// Only ever goes up.
    Counter(Vec<(Labels, u64)>),
    /// Goes up and down.
    Gauge(Vec<(Labels, i64)>),
    /// A distribution: counts per bucket (not cumulative; one more than
    /// the bounds, for +Inf) and the sum.
    Histogram {
        /// The buckets' upper bounds.
        bounds: Vec<f64>,
        /// The count of each bucket, then of those above the last bound.
        counts: Vec<u64>,
        /// The sum of the observed values.
        sum: f64,
    },
}

impl Metric {
    /// A counter with one unlabelled sample.
    pub fn counter(name: &str, help: &str, value: u64) -> Metric {
        Metric::counters(name, help, vec![(Vec::new(), value)])
    }

    /// A counter with labelled samples.
    pub fn counters(name: &str, help: &str, samples: Vec<(Labels, u64)>) -> Metric {
        Metric {
            name: name.to_owned(),
            help: help.to_owned(),
            values: Values::Counter(samples),
        }
    }

    /// A gauge with labelled samples.
    pub fn gauges(name: &str, help: &str, samples: Vec<(Labels, i64)>) -> Metric {
        Metric {
            name: name.to_owned(),
            help: help.to_owned(),
            values: Values::Gauge(samples),
        }
    }

    /// A histogram.
    pub fn histogram(name: &str, help: &str, bounds: &[f64], counts: &[u64], sum: f64) -> Metric {
        Metric {
            name: name.to_owned(),
            help: help.to_owned(),
            values: Values::Histogram {
                bounds: bounds.to_vec(),
                counts: counts.to_vec(),
                sum,
            },
        }
    }

    /// The value of an unlabelled counter (or the sum of its samples).
    pub(crate) fn counter_total(&self) -> Option<u64> {
        match &self.values {
            Values::Counter(samples) => Some(samples.iter().map(|(_, v)| v).sum()),
            _ => None,
        }
    }

    fn metric_type(&self) -> MetricType {
        match self.values {
            Values::Counter(_) => MetricType::Counter,
            Values::Gauge(_) => MetricType::Gauge,
            Values::Histogram { .. } => MetricType::Histogram,
        }
    }
}

/// A label pair.
pub fn label(name: &str, value: impl ToString) -> (String, String) {
    (name.to_owned(), value.to_string())
}

/// What one scrape shows: families, each with its sources' samples
/// (`extra` labels added: the worker's slot, say).
#[derive(Debug, Default)]
pub(crate) struct Scrape {
    /// By family name, in the order first seen: its first definition, and
    /// every (extra labels, family) to show under it.
    families: BTreeMap<String, Vec<(Labels, Metric)>>,
    order: Vec<String>,
}

impl Scrape {
    /// Adds `metric` with the extra labels `extra` on every sample. A
    /// family whose type differs from the one first seen under its name is
    /// left out (it cannot be encoded under one descriptor).
    pub(crate) fn add(&mut self, extra: &Labels, metric: Metric) {
        let entry = self.families.entry(metric.name.clone()).or_default();
        if entry.is_empty() {
            self.order.push(metric.name.clone());
        } else if entry[0].1.metric_type().as_str() != metric.metric_type().as_str() {
            return;
        }
        entry.push((extra.clone(), metric));
    }

    /// The OpenMetrics text of the scrape.
    pub(crate) fn encode(self) -> String {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(self));
        let mut text = String::new();
        if prometheus_client::encoding::text::encode(&mut text, &registry).is_err() {
            text.clear();
        }
        text
    }
}

impl Collector for Scrape {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for name in &self.order {
            let Some(sources) = self.families.get(name) else {
                continue;
            };
            let Some((_, first)) = sources.first() else {
                continue;
            };
            let mut family =
                encoder.encode_descriptor(name, &first.help, None, first.metric_type())?;
            let mut counters = Vec::new();
            let mut gauges = Vec::new();
            for (extra, metric) in sources {
                match &metric.values {
                    Values::Counter(samples) => counters.extend(
                        samples
                            .iter()
                            .map(|(labels, v)| (joined(extra, labels), ConstCounter::new(*v))),
                    ),
                    Values::Gauge(samples) => gauges.extend(
                        samples
                            .iter()
                            .map(|(labels, v)| (joined(extra, labels), ConstGauge::new(*v))),
                    ),
                    Values::Histogram {
                        bounds,
                        counts,
                        sum,
                    } => {
                        let count = counts.iter().sum();
                        let buckets: Vec<(f64, u64)> = bounds
                            .iter()
                            .copied()
                            .chain(std::iter::once(f64::MAX))
                            .zip(counts.iter().copied())
                            .collect();
                        family
                            .encode_family(extra)?
                            .encode_histogram::<Labels>(*sum, count, &buckets, None)?;
                    }
                }
            }
            if counters.is_empty() {
                encode_samples(family, gauges)?;
            } else {
                encode_samples(family, counters)?;
            }
        }
        Ok(())
    }
}

/// Encodes samples under their family: a lone unlabelled sample as is
/// (`name 3`), the others with their labels (`name{worker="0"} 3`).
fn encode_samples<M: EncodeMetric>(
    mut family: prometheus_client::encoding::MetricEncoder<'_>,
    mut samples: Vec<(Labels, M)>,
) -> Result<(), std::fmt::Error> {
    if samples.len() == 1 && samples[0].0.is_empty() {
        if let Some((_, metric)) = samples.pop() {
            return metric.encode(family);
        }
    }
    for (labels, metric) in samples {
        metric.encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

fn joined(extra: &Labels, labels: &Labels) -> Labels {
    extra.iter().chain(labels).cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_of_several_workers_are_encoded_once_with_their_labels() {
        let mut scrape = Scrape::default();
        for slot in 0..2 {
            let worker = vec![label("worker", slot)];
            scrape.add(
                &worker,
                Metric::counter("iocluster_upgrades", "Upgrades.", 3 + slot),
            );
            scrape.add(
                &worker,
                Metric::gauges(
                    "iocluster_sessions",
                    "Live sessions.",
                    vec![(vec![label("transport", "polling")], 1)],
                ),
            );
            scrape.add(
                &worker,
                Metric::histogram(
                    "iocluster_latency_seconds",
                    "Latency.",
                    &[0.1, 1.0],
                    &[1, 2, 3],
                    7.5,
                ),
            );
        }
        let text = scrape.encode();
        assert_eq!(
            text.matches("# TYPE iocluster_upgrades counter").count(),
            1,
            "{text}"
        );
        assert!(
            text.contains("iocluster_upgrades_total{worker=\"0\"} 3"),
            "{text}"
        );
        assert!(
            text.contains("iocluster_upgrades_total{worker=\"1\"} 4"),
            "{text}"
        );
        assert!(
            text.contains("iocluster_sessions{worker=\"1\",transport=\"polling\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("iocluster_latency_seconds_bucket{le=\"+Inf\",worker=\"0\"} 6"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn a_family_reported_with_another_type_is_left_out() {
        let mut scrape = Scrape::default();
        scrape.add(&Vec::new(), Metric::counter("x", "A counter.", 1));
        scrape.add(
            &Vec::new(),
            Metric::gauges("x", "Not a counter.", vec![(Vec::new(), 2)]),
        );
        let text = scrape.encode();
        assert!(!text.contains("Not a counter"), "{text}");
    }
}
