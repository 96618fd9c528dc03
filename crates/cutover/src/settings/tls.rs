//! The HTTPS settings of `cutover serve`: the certificate storage, the
//! ACME CA and its account, on-demand TLS, and the hosts ordered for the
//! control listener.

use std::path::Path;

use cutover_tls::{AcmeSettings, TlsSettings, LETS_ENCRYPT, LETS_ENCRYPT_STAGING};

use crate::args::ServeArgs;
use crate::error::CliError;

/// Certificates: stored under the state dir, ordered from Let's Encrypt
/// unless told otherwise.
pub(super) fn tls_settings(args: &ServeArgs, state_dir: &Path) -> Result<TlsSettings, CliError> {
    let acme = if args.no_acme {
        None
    } else {
        // An empty value is no value: a stack file passes `${VAR:-}` on.
        let directory = match (non_empty(&args.acme_directory), args.acme_staging) {
            (Some(url), _) => url.clone(),
            (None, true) => LETS_ENCRYPT_STAGING.into(),
            (None, false) => LETS_ENCRYPT.into(),
        };
        if !directory.starts_with("https://") {
            return Err(CliError::bad_input(format!(
                "--acme-directory: {directory:?} is not an https:// URL"
            ))
            .with_hint("ACME directories are served over HTTPS, e.g. https://acme-v02.api.letsencrypt.org/directory"));
        }
        let mut acme = AcmeSettings::new(directory);
        acme.email = non_empty(&args.acme_email).cloned();
        acme.ca_root = args.acme_ca_root.clone();
        acme.dns_hook = args.acme_dns_hook.as_deref().map(dns_hook).transpose()?;
        if let (Some(kid), Some(file)) = (&args.acme_eab_kid, &args.acme_eab_hmac_key_file) {
            acme.eab = Some((kid.clone(), eab_key(file)?));
        }
        Some(acme)
    };
    if let Some(url) = &args.tls_on_demand_ask {
        if !url.starts_with("http://") {
            return Err(CliError::bad_input(format!(
                "--tls-on-demand-ask: {url:?} is not an http:// URL"
            ))
            .with_hint(
                "point it at a service of yours on this host, e.g. http://127.0.0.1:9123/allowed",
            ));
        }
    }
    Ok(TlsSettings {
        storage: args
            .certificates_dir
            .clone()
            .unwrap_or_else(|| state_dir.join("certificates")),
        acme,
        tls_alpn: true,
        on_demand_ask: args.tls_on_demand_ask.clone(),
        standing_hosts: args
            .control_tls_host
            .iter()
            .map(|h| h.to_ascii_lowercase())
            .collect(),
        default_host: args
            .tls_default_host
            .as_ref()
            .map(|h| h.to_ascii_lowercase()),
    })
}

fn non_empty(value: &Option<String>) -> Option<&String> {
    value.as_ref().filter(|v| !v.is_empty())
}

/// The HMAC key as CAs hand it out: base64url, padded or not.
fn eab_key(file: &Path) -> Result<Vec<u8>, CliError> {
    use base64::Engine;
    let text = std::fs::read_to_string(file).map_err(|e| {
        CliError::bad_input(format!("--acme-eab-hmac-key-file {}: {e}", file.display()))
    })?;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text.trim().trim_end_matches('='))
        .map_err(|e| {
            CliError::bad_input(format!(
                "--acme-eab-hmac-key-file {}: not base64url: {e}",
                file.display()
            ))
            .with_hint("paste the HMAC key exactly as the CA shows it")
        })
}

/// `--acme-dns-hook`: an executable file, by absolute path (the daemon runs
/// it from wherever it was started, and later from a systemd unit).
fn dns_hook(path: &Path) -> Result<std::path::PathBuf, CliError> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::path::absolute(path)
        .map_err(|e| CliError::bad_input(format!("--acme-dns-hook {}: {e}", path.display())))?;
    match std::fs::metadata(&path) {
        Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => Ok(path),
        Ok(_) => Err(CliError::bad_input(format!(
            "--acme-dns-hook {}: not an executable file",
            path.display()
        ))
        .with_hint(format!("`chmod +x {}`", path.display()))),
        Err(e) => Err(
            CliError::bad_input(format!("--acme-dns-hook {}: {e}", path.display()))
                .with_hint("give the path of the script that sets your DNS provider's TXT records"),
        ),
    }
}
