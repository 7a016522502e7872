//! Unit tests of `activation.rs`.

use super::*;

#[test]
fn the_exclusive_create_refuses_a_planted_symlink() {
    let dir = private_dir("threadnet-unit").unwrap();
    let (victim, link) = (dir.join("victim"), dir.join("link"));
    fs::write(&victim, "precious").unwrap();
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    let err = create_exclusive(&link).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
    // A private directory: this user only, and a new name each time.
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(&dir).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
    let other = private_dir("threadnet-unit").unwrap();
    assert_ne!(other, dir);
    fs::remove_dir_all(&dir).unwrap();
    fs::remove_dir(&other).unwrap();
}
