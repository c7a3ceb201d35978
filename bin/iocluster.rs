//! iocluster: Socket.IO on every core and every machine.
fn main() {}
