//! Socket.IO v5 server on the iocluster Engine.IO layer.
#![deny(missing_docs)]
