//! Counting what happens after a send without recording anyone: who asked
//! (a person or a machine, a feed service and its readers), and how many
//! different emails did something.

pub mod agents;
pub mod sketch;

pub use agents::{followers, is_machine, machine_open, Followers, MachineOpen};
pub use sketch::Sketch;
