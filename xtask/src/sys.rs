//! Small helpers of the host that several peers need: whether we run as root, installing
//! Debian packages, free ports, where cargo puts its builds.

use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};

/// Where cargo puts what it builds for the workspace at `root`: `CARGO_TARGET_DIR` when
/// it is set (relative to the root, from where `cargo xtask` runs), else `root/target`.
pub(crate) fn cargo_target(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => root.join(dir),
        _ => root.join("target"),
    }
}

/// Whether xtask runs as root (then servers that refuse root run as a system user).
pub(crate) fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Whether xtask may install missing peers itself: as root on a machine with `apt-get`.
pub(crate) fn can_apt_install() -> bool {
    is_root() && Path::new("/usr/bin/apt-get").exists()
}

/// `apt-get install -y --no-install-recommends` with apt `options` and `packages`, run again
/// after an `apt-get update` when the first try fails; an error names the packages. A
/// `policy-rc.d` is in place meanwhile (unless one already is) so maintainer scripts do not
/// start the distribution's own services. apt's output goes to stderr: stdout is for what
/// `cargo xtask mail-peer` and `sms-peer` print.
pub(crate) fn apt_install(options: &[&str], packages: &[&str]) -> anyhow::Result<()> {
    let policy = Path::new("/usr/sbin/policy-rc.d");
    let wrote_policy = !policy.exists();
    if wrote_policy {
        std::fs::write(policy, "#!/bin/sh\nexit 101\n")?;
        std::fs::set_permissions(policy, std::fs::Permissions::from_mode(0o755))?;
    }
    let apt = |args: &[&str]| {
        Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(Stdio::from(std::io::stderr()))
            .status()
            .is_ok_and(|s| s.success())
    };
    let install = [&["install", "-y", "--no-install-recommends"], options, packages].concat();
    let ok = apt(&install) || (apt(&["update"]) && apt(&install));
    if wrote_policy {
        let _ = std::fs::remove_file(policy);
    }
    if !ok {
        bail!("apt-get could not install {}", packages.join(" "));
    }
    Ok(())
}

/// A port nothing listens on right now (bound to port 0, then released).
pub(crate) fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("cannot find a port")?;
    Ok(listener.local_addr()?.port())
}

/// Free loopback ports, all held until every one is chosen so none repeats.
pub(crate) fn free_ports<const N: usize>() -> anyhow::Result<[u16; N]> {
    let listeners: Vec<TcpListener> = (0..N)
        .map(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)))
        .collect::<Result<_, _>>()
        .context("cannot find free ports")?;
    let mut ports = [0u16; N];
    for (p, l) in ports.iter_mut().zip(&listeners) {
        *p = l.local_addr()?.port();
    }
    Ok(ports)
}
