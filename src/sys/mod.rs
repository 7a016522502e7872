//! The operating system: the few calls std lacks (the crate's only `unsafe` code, in `os.rs`),
//! the stream sockets a connection runs on (`transport.rs`: TCP and Unix-domain behind one
//! trait, listeners, dialling, addresses), and the process's thread ceiling (`ceiling.rs`).

pub(crate) mod ceiling;
// The crate's only unsafe code: the OS calls std lacks (sigaction, dup2, ...). See its docs.
#[allow(unsafe_code)]
pub(crate) mod os;
pub(crate) mod transport;
