//! One ACME account and the orders made with it, on instant-acme: an order
//! for one host, validated by one challenge type, to a certificate chain
//! and a fresh P-256 key.

use std::path::PathBuf;
use std::time::Duration;

use cutover_core::tls::RenewalWindow;
use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, CertificateIdentifier, ChallengeType,
    ExternalAccountKey, Identifier, NewAccount, NewOrder, OrderStatus, RetryPolicy,
};
use rustls_pki_types::CertificateDer;
use tokio::sync::OnceCell;

use crate::challenge::Challenges;
use crate::renewal::Ari;
use crate::storage::Storage;

/// Let's Encrypt's production directory, the default CA.
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";
/// Its staging directory (`--acme-staging`): untrusted certificates, far
/// higher rate limits.
pub const LETS_ENCRYPT_STAGING: &str = "https://acme-staging-v02.api.letsencrypt.org/directory";

/// How the daemon talks to its CA (`cutover serve --acme-*`).
#[derive(Debug, Clone)]
pub struct AcmeSettings {
    pub directory: String,
    /// Contact for expiry and policy mail.
    pub email: Option<String>,
    /// External account binding: the key id and the HMAC key's bytes.
    pub eab: Option<(String, Vec<u8>)>,
    /// A PEM file to trust for the directory's HTTPS (a private or test CA).
    pub ca_root: Option<PathBuf>,
    /// The first retry after a failed order; later ones double it.
    pub retry_base: Duration,
    /// An executable that publishes DNS-01 records (`--acme-dns-hook`):
    /// `HOOK present NAME VALUE`, then `HOOK cleanup NAME VALUE`. With it,
    /// wildcard hosts get certificates too.
    pub dns_hook: Option<PathBuf>,
}

impl AcmeSettings {
    pub fn new(directory: impl Into<String>) -> Self {
        AcmeSettings {
            directory: directory.into(),
            email: None,
            eab: None,
            ca_root: None,
            retry_base: Duration::from_secs(60),
            dns_hook: None,
        }
    }
}

/// How one order ended badly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OrderError {
    /// The CA could not validate the challenge: another type may work.
    Validation(String),
    /// Anything else (the CA unreachable, the account refused, a limit).
    Other(String),
}

impl std::fmt::Display for OrderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OrderError::Validation(s) | OrderError::Other(s) => f.write_str(s),
        }
    }
}

pub(crate) struct Acme {
    pub settings: AcmeSettings,
    pub storage: Storage,
    account: OnceCell<Account>,
}

/// Polling for the CA's validation and for the certificate: it takes
/// seconds, and a minute and a half covers a slow CA.
const POLL: RetryPolicy = RetryPolicy::new()
    .initial_delay(Duration::from_millis(250))
    .backoff(1.5)
    .timeout(Duration::from_secs(90));

impl Acme {
    pub fn new(settings: AcmeSettings, storage: Storage) -> Self {
        Acme {
            settings,
            storage,
            account: OnceCell::new(),
        }
    }

    /// The account: the stored one, or a new one registered (and stored).
    async fn account(&self) -> Result<&Account, OrderError> {
        self.account
            .get_or_try_init(|| async {
                let other = |what: &str, e: &dyn std::fmt::Display| OrderError::Other(format!("{what}: {e}"));
                let builder = match &self.settings.ca_root {
                    Some(root) => Account::builder_with_root(root),
                    None => Account::builder(),
                }
                .map_err(|e| other("cannot set up the ACME client", &e))?;
                if let Some(json) = self.storage.account() {
                    let creds: AccountCredentials = serde_json::from_str(&json)
                        .map_err(|e| other("the stored ACME account cannot be read", &e))?;
                    return builder
                        .from_credentials(creds)
                        .await
                        .map_err(|e| other("the stored ACME account is refused", &e));
                }
                let mailto = self.settings.email.as_ref().map(|e| format!("mailto:{e}"));
                let contact: Vec<&str> = mailto.iter().map(String::as_str).collect();
                let eab = self
                    .settings
                    .eab
                    .as_ref()
                    .map(|(kid, key)| ExternalAccountKey::new(kid.clone(), key));
                let (account, creds) = builder
                    .create(
                        &NewAccount {
                            contact: &contact,
                            terms_of_service_agreed: true,
                            only_return_existing: false,
                        },
                        self.settings.directory.clone(),
                        eab.as_ref(),
                    )
                    .await
                    .map_err(|e| other(&format!("cannot register an account at {}", self.settings.directory), &e))?;
                let json = serde_json::to_string(&creds).expect("credentials serialize");
                self.storage
                    .save_account(&json)
                    .map_err(|e| other("cannot store the ACME account", &e))?;
                tracing::info!(directory = %self.settings.directory, id = account.id(), "ACME account registered");
                Ok(account)
            })
            .await
    }

    /// What the CA's renewal information says of `leaf` (RFC 9773).
    pub async fn renewal_info(&self, leaf: &CertificateDer<'_>) -> Ari {
        let failed = |e: &dyn std::fmt::Display| {
            tracing::warn!(error = %e, "cannot read the CA's renewal information; asking again in an hour");
            Ari::Failed
        };
        let account = match self.account().await {
            Ok(a) => a,
            Err(e) => return failed(&e),
        };
        let id = match CertificateIdentifier::try_from(leaf) {
            Ok(id) => id,
            Err(e) => return failed(&e),
        };
        match account.renewal_info(&id).await {
            Ok((info, retry_after)) => Ari::Window {
                window: RenewalWindow {
                    start: info.suggested_window.start.into(),
                    end: info.suggested_window.end.into(),
                    explanation: info.explanation_url,
                },
                retry_after,
            },
            Err(instant_acme::Error::Unsupported(_)) => Ari::Unsupported,
            Err(e) => failed(&format!("for {id}: {e}")),
        }
    }

    /// Opens an order for `host`. With `replaces`, the order names the
    /// certificate it renews (RFC 9773 §5), which a CA may reward with
    /// room in its rate limits; a CA that refuses it (it was already
    /// replaced, or it has no ARI) gets a plain order.
    async fn new_order(
        &self,
        host: &str,
        replaces: Option<&CertificateDer<'_>>,
    ) -> Result<instant_acme::Order, OrderError> {
        let account = self.account().await?;
        let ids = [Identifier::Dns(host.to_string())];
        if let Some(id) = replaces.and_then(|c| CertificateIdentifier::try_from(c).ok()) {
            match account.new_order(&NewOrder::new(&ids).replaces(id)).await {
                Ok(order) => return Ok(order),
                Err(instant_acme::Error::Unsupported(_)) => {}
                Err(e) => {
                    tracing::info!(host, error = %e, "the CA refused the order as a replacement; ordering plainly")
                }
            }
        }
        account
            .new_order(&NewOrder::new(&ids))
            .await
            .map_err(|e| OrderError::Other(e.to_string()))
    }

    /// Orders a certificate for `host`, answering `kind` challenges; the
    /// chain and key as PEM. `replaces` is the certificate it renews.
    pub async fn order(
        &self,
        host: &str,
        kind: ChallengeType,
        challenges: &Challenges,
        replaces: Option<&CertificateDer<'_>>,
    ) -> Result<(String, String), OrderError> {
        let other = |e: instant_acme::Error| OrderError::Other(e.to_string());
        let mut order = self.new_order(host, replaces).await?;
        let mut tokens = Vec::new();
        let mut records = Vec::new();
        let mut authorizations = order.authorizations();
        while let Some(authz) = authorizations.next().await {
            let mut authz = authz.map_err(other)?;
            if authz.status == AuthorizationStatus::Valid {
                continue;
            }
            let Some(mut challenge) = authz.challenge(kind.clone()) else {
                return Err(OrderError::Validation(format!(
                    "the CA offers no {kind:?} challenge for {host}"
                )));
            };
            let key_auth = challenge.key_authorization();
            let put = match kind {
                ChallengeType::Http01 => {
                    tokens.push(challenge.token.clone());
                    challenges
                        .put_http01(&challenge.token, key_auth.as_str())
                        .map_err(|e| e.to_string())
                }
                ChallengeType::Dns01 => {
                    let record = (dns01_name(host), key_auth.dns_value());
                    let put = self.dns_hook("present", &record).await;
                    records.push(record);
                    put
                }
                _ => challenges.put_tls_alpn01(host, key_auth.digest().as_ref()),
            };
            if let Err(e) = put {
                self.clear(host, challenges, &tokens, &records).await;
                return Err(OrderError::Other(e));
            }
            challenge.set_ready().await.map_err(other)?;
        }
        let status = order.poll_ready(&POLL).await;
        self.clear(host, challenges, &tokens, &records).await;
        match status {
            Ok(OrderStatus::Ready) => {}
            Ok(OrderStatus::Invalid) => {
                return Err(OrderError::Validation(why_invalid(&mut order, kind).await))
            }
            Ok(s) => return Err(OrderError::Other(format!("the order ended {s:?}"))),
            // The CA answers a failed validation with a problem document.
            Err(instant_acme::Error::Api(p)) => {
                let detail = p.detail.as_deref().unwrap_or("no detail");
                return Err(OrderError::Validation(format!(
                    "{kind:?} validation failed: {detail}"
                )));
            }
            Err(e) => return Err(other(e)),
        }
        let key = order.finalize().await.map_err(other)?;
        let chain = order.poll_certificate(&POLL).await.map_err(other)?;
        Ok((chain, key))
    }
}

impl Acme {
    /// Takes down what answered the order's challenges.
    async fn clear(
        &self,
        host: &str,
        challenges: &Challenges,
        tokens: &[String],
        records: &[(String, String)],
    ) {
        for t in tokens {
            challenges.clear(Some(t), host);
        }
        challenges.clear(None, host);
        for record in records {
            if let Err(e) = self.dns_hook("cleanup", record).await {
                tracing::warn!(host, error = %e, "the DNS-01 record was not cleaned up");
            }
        }
    }

    /// Runs `--acme-dns-hook ACTION NAME VALUE`; its exit 0 means the
    /// record is published (or gone), so the CA may look now.
    async fn dns_hook(&self, action: &str, (name, value): &(String, String)) -> Result<(), String> {
        let Some(hook) = &self.settings.dns_hook else {
            return Err("DNS-01 needs `cutover serve --acme-dns-hook`".into());
        };
        let run = tokio::process::Command::new(hook)
            .args([action, name, value])
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output();
        let shown = format!("the DNS hook `{} {action} {name}`", hook.display());
        let out = match tokio::time::timeout(DNS_HOOK_TIMEOUT, run).await {
            Err(_) => return Err(format!("{shown} did not end within {DNS_HOOK_TIMEOUT:?}")),
            Ok(Err(e)) => return Err(format!("{shown} cannot run: {e}")),
            Ok(Ok(out)) => out,
        };
        if out.status.success() {
            return Ok(());
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        let last = stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        Err(format!("{shown} failed ({}): {last}", out.status))
    }
}

/// A DNS hook has this long to publish or remove a record: a provider's
/// API and its wait for propagation take seconds, rarely a minute.
const DNS_HOOK_TIMEOUT: Duration = Duration::from_secs(120);

/// The TXT record DNS-01 validates: `_acme-challenge.` and the name, a
/// wildcard's without its `*.`.
fn dns01_name(host: &str) -> String {
    format!("_acme-challenge.{}", host.trim_start_matches("*."))
}

/// The CA's own words on why validation failed.
async fn why_invalid(order: &mut instant_acme::Order, kind: ChallengeType) -> String {
    let mut authorizations = order.authorizations();
    while let Some(Ok(authz)) = authorizations.next().await {
        for c in &authz.challenges {
            if let (true, Some(p)) = (c.r#type == kind, &c.error) {
                return format!(
                    "{kind:?} validation failed: {}",
                    p.detail.as_deref().unwrap_or("no detail")
                );
            }
        }
    }
    format!("{kind:?} validation failed")
}
