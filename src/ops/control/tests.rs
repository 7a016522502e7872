use super::*;

fn split(args: &[&str]) -> (Option<Command>, Vec<String>) {
    Command::split(args.iter().map(|s| s.to_string()))
}

#[test]
fn the_command_word_is_taken_off_the_front() {
    assert_eq!(
        split(&["--addr", "x"]),
        (None, vec!["--addr".into(), "x".into()])
    );
    assert_eq!(
        split(&["start", "-d", "--addr", "x"]).0,
        Some(Command::StartDaemon)
    );
    assert_eq!(
        split(&["start", "--addr", "x"]),
        (Some(Command::Start), vec!["--addr".into(), "x".into()])
    );
    assert_eq!(split(&["stop"]).0, Some(Command::Stop));
    assert_eq!(split(&["reload"]).0, Some(Command::Reload));
    assert_eq!(split(&["status"]).0, Some(Command::Status));
}

#[test]
fn a_second_start_lock_is_refused_until_the_first_is_dropped() {
    let dir = std::env::temp_dir().join(format!("threadnet-lock-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let pid_file = dir.join("server.pid");
    let first = StartLock::take(&pid_file).unwrap_or_else(|e| panic!("{}", e.0));
    let lock_path = dir.join("server.pid.lock");
    assert!(lock_path.exists());
    let Err(Failure(why, code)) = StartLock::take(&pid_file) else {
        panic!("two start locks at once");
    };
    assert_eq!(code, EXIT_ALREADY_RUNNING);
    assert!(why.contains("another start"), "{why}");
    drop(first);
    assert!(!lock_path.exists(), "the lock file is removed");
    let again = StartLock::take(&pid_file).unwrap_or_else(|e| panic!("{}", e.0));
    drop(again);
    // A symlink at the lock's path is not followed.
    let victim = dir.join("victim");
    fs::write(&victim, "precious").unwrap();
    std::os::unix::fs::symlink(&victim, &lock_path).unwrap();
    let Err(Failure(why, code)) = StartLock::take(&pid_file) else {
        panic!("locked through a symlink");
    };
    assert_eq!(code, EXIT_FAILED);
    assert!(why.contains("symbolic link"), "{why}");
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_supervisor_state_reads_back_and_a_missing_handler_is_seen() {
    let state = State {
        supervisor: 42,
        slots: vec!["up".into(), "gave up after 5 crashes".into()],
    };
    let path = std::env::temp_dir().join(format!("threadnet-state-{}", std::process::id()));
    fs::write(&path, state.render()).unwrap();
    let read = State::read(&path).unwrap();
    fs::remove_file(&path).unwrap();
    assert_eq!(read.supervisor, 42);
    assert_eq!(read.why_down(1), None);
    assert_eq!(read.why_down(2), Some("gave up after 5 crashes"));
    // The test harness handles no SIGUSR2 (its default action would end it).
    assert_eq!(catches(std::process::id(), os::SIGUSR2), Some(false));
    assert_eq!(catches(u32::MAX, os::SIGUSR2), None);
}

#[test]
fn this_process_is_running_and_has_an_uptime() {
    assert!(is_server(std::process::id()));
    assert!(uptime(std::process::id()).is_ok());
}
