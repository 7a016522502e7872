//! The commands of goes' command line: which one the program's arguments start with.

/// One of goes' commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// `start`: serve in the foreground.
    Start,
    /// `start -d`: serve in the background, logging to the log file.
    StartDaemon,
    /// `stop`: graceful stop (SIGTERM), waiting for the process to exit.
    Stop,
    /// `reload`: hand off to a new copy (SIGUSR2), waiting for its pid in the pid file.
    Reload,
    /// `status`: running or not, pid, uptime.
    Status,
}

impl Command {
    /// Takes the command off the front of `args` (the program's arguments without its name):
    /// `start`, `start -d` (or `start --daemon`), `stop`, `reload`, `status`. Returns it
    /// (`None` if the first argument is none of these: a flag, or nothing) and the arguments
    /// that follow it.
    ///
    /// ```
    /// use threadnet::control::Command;
    ///
    /// let args = ["start", "-d", "--addr", "127.0.0.1:0"].map(String::from);
    /// let (command, flags) = Command::split(args);
    /// assert_eq!(command, Some(Command::StartDaemon));
    /// assert_eq!(flags, ["--addr", "127.0.0.1:0"]);
    /// assert_eq!(Command::split(flags).0, None); // no command: the program decides
    /// ```
    pub fn split(args: impl IntoIterator<Item = String>) -> (Option<Command>, Vec<String>) {
        let mut args: Vec<String> = args.into_iter().collect();
        let command = match args.first().map(String::as_str) {
            Some("start") => Command::Start,
            Some("stop") => Command::Stop,
            Some("reload") => Command::Reload,
            Some("status") => Command::Status,
            _ => return (None, args),
        };
        args.remove(0);
        if command == Command::Start
            && matches!(args.first().map(String::as_str), Some("-d" | "--daemon"))
        {
            args.remove(0);
            return (Some(Command::StartDaemon), args);
        }
        (Some(command), args)
    }
}
