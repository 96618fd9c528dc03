//! Where the daemon is: `--host` as the user wrote it, read into one of the
//! three transports (docs/remote.md).

use std::fmt;
use std::path::PathBuf;

use cutover_core::diag::Report;

/// A daemon's address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// The control socket on this machine.
    Unix(PathBuf),
    /// The control socket on another machine, through the system `ssh` and
    /// `cutover dial-stdio` there.
    Ssh(SshHost),
    /// The TCP control listener, over TLS.
    Https { host: String, port: u16 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshHost {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
    /// The socket on the far side; `None` is that machine's default.
    pub socket: Option<PathBuf>,
}

/// The control listener's port when `https://` names none (`cutover serve
/// --control-listen`'s documented example).
pub const DEFAULT_HTTPS_PORT: u16 = 26090;

impl Host {
    /// Reads `raw`, which came from `what` (`--host`, `CUTOVER_HOST`, a
    /// context) into the error's message.
    pub fn parse(raw: &str) -> Result<Host, Report> {
        let bad = |why: &str| {
            Report::new(format!("{raw:?} is not a daemon address: {why}")).hint(
                "write unix:///run/cutover/cutover.sock, ssh://user@host[:port][/socket] or https://host[:port]",
            )
        };
        let Some((scheme, rest)) = raw.split_once("://") else {
            return Err(bad("it has no scheme"));
        };
        match scheme {
            "unix" => {
                if !rest.starts_with('/') {
                    return Err(bad("a unix:// address is an absolute path (three slashes)"));
                }
                Ok(Host::Unix(PathBuf::from(rest)))
            }
            "ssh" => {
                let (authority, socket) = match rest.find('/') {
                    Some(at) => (&rest[..at], Some(PathBuf::from(&rest[at..]))),
                    None => (rest, None),
                };
                let (user, hostport) = match authority.rsplit_once('@') {
                    Some((u, h)) if !u.is_empty() => (Some(u.to_owned()), h),
                    Some(_) => return Err(bad("the user before @ is empty")),
                    None => (None, authority),
                };
                let (host, port) = split_port(hostport).map_err(|why| bad(&why))?;
                // ssh takes an argument starting with `-` as an option.
                if host.starts_with('-') || user.as_deref().is_some_and(|u| u.starts_with('-')) {
                    return Err(bad("a host or user cannot start with -"));
                }
                Ok(Host::Ssh(SshHost {
                    user,
                    host,
                    port,
                    socket: socket.filter(|s| s.as_os_str() != "/"),
                }))
            }
            "https" => {
                let authority = rest.strip_suffix('/').unwrap_or(rest);
                if authority.contains('/') {
                    return Err(bad("an https:// address has no path"));
                }
                let (host, port) = split_port(authority).map_err(|why| bad(&why))?;
                Ok(Host::Https {
                    host,
                    port: port.unwrap_or(DEFAULT_HTTPS_PORT),
                })
            }
            "http" | "tcp" => Err(Report::new(format!(
                "{raw:?}: the control API is not served over plain HTTP to other machines"
            ))
            .hint("use https://HOST[:PORT] (the daemon's --control-listen serves TLS) or ssh://USER@HOST")),
            other => Err(bad(&format!("unknown scheme {other:?}"))),
        }
    }

    /// How messages name it: the socket's path, else the URL.
    pub fn shown(&self) -> String {
        match self {
            Host::Unix(path) => path.display().to_string(),
            other => other.to_string(),
        }
    }

    /// Whether the daemon shares this machine's files: build contexts,
    /// secret files and bind sources are then read where they are.
    pub fn is_local(&self) -> bool {
        matches!(self, Host::Unix(_))
    }
}

/// `host`, `host:port`, `[v6]`, `[v6]:port`.
fn split_port(hostport: &str) -> Result<(String, Option<u16>), String> {
    let (host, port) = if let Some(rest) = hostport.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or("an IPv6 address in [ ] is not closed")?;
        match after {
            "" => (host, None),
            p => (host, Some(p.strip_prefix(':').ok_or("junk after ]")?)),
        }
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    if host.is_empty() {
        return Err("the host is empty".into());
    }
    let port = match port {
        None => None,
        Some(p) => Some(
            p.parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| format!("{p:?} is not a port"))?,
        ),
    };
    Ok((host.to_owned(), port))
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Unix(path) => write!(f, "unix://{}", path.display()),
            Host::Ssh(ssh) => {
                f.write_str("ssh://")?;
                if let Some(user) = &ssh.user {
                    write!(f, "{user}@")?;
                }
                write_host(f, &ssh.host)?;
                if let Some(port) = ssh.port {
                    write!(f, ":{port}")?;
                }
                if let Some(socket) = &ssh.socket {
                    write!(f, "{}", socket.display())?;
                }
                Ok(())
            }
            Host::Https { host, port } => {
                f.write_str("https://")?;
                write_host(f, host)?;
                write!(f, ":{port}")
            }
        }
    }
}

fn write_host(f: &mut fmt::Formatter<'_>, host: &str) -> fmt::Result {
    if host.contains(':') {
        write!(f, "[{host}]")
    } else {
        f.write_str(host)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_transports() {
        assert_eq!(
            Host::parse("unix:///run/cutover/cutover.sock").unwrap(),
            Host::Unix("/run/cutover/cutover.sock".into())
        );
        let ssh = Host::parse("ssh://deploy@vm1:2222/run/cutover/cutover.sock").unwrap();
        assert_eq!(
            ssh,
            Host::Ssh(SshHost {
                user: Some("deploy".into()),
                host: "vm1".into(),
                port: Some(2222),
                socket: Some("/run/cutover/cutover.sock".into()),
            })
        );
        assert_eq!(
            ssh.to_string(),
            "ssh://deploy@vm1:2222/run/cutover/cutover.sock"
        );
        assert_eq!(
            Host::parse("ssh://vm1").unwrap(),
            Host::Ssh(SshHost {
                user: None,
                host: "vm1".into(),
                port: None,
                socket: None
            })
        );
        assert_eq!(
            Host::parse("https://[::1]:9443").unwrap(),
            Host::Https {
                host: "::1".into(),
                port: 9443
            }
        );
        assert_eq!(
            Host::parse("https://cd.example.com/").unwrap().to_string(),
            "https://cd.example.com:26090"
        );
        assert!(Host::parse("unix:///x").unwrap().is_local());
        assert!(!ssh.is_local());
    }

    #[test]
    fn what_is_refused_says_why() {
        for (raw, why) in [
            ("/run/cutover.sock", "no scheme"),
            ("unix://run/x.sock", "absolute path"),
            ("ssh://@vm1", "user before @"),
            ("ssh://-oProxyCommand=x", "cannot start with -"),
            ("ssh://vm1:0", "not a port"),
            ("ssh://vm1:ssh", "not a port"),
            ("https://vm1/v1", "no path"),
            ("https://[::1", "not closed"),
            ("ftp://vm1", "unknown scheme"),
        ] {
            let err = Host::parse(raw).unwrap_err();
            assert!(err.message.contains(why), "{raw}: {err:?}");
            assert!(err.hint.is_some());
        }
        let plain = Host::parse("http://10.0.0.5:26090").unwrap_err();
        assert!(plain.message.contains("plain HTTP"), "{plain:?}");
    }
}
