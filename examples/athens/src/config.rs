//! Settings from the environment, named like the field report's `.env`
//! (`REDIS_HOST`, `REDIS_PORT`) so the same compose keys work unchanged.

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{key}={value:?} is not a valid {what}\nhint: {hint}")]
    Invalid {
        key: &'static str,
        value: String,
        what: &'static str,
        hint: &'static str,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `REDIS_HOST`; the compose service name (`redis`) in a deployment.
    pub redis_host: String,
    /// `REDIS_PORT`.
    pub redis_port: u16,
    /// `APP_VERSION`: what `/api/v1/visits`, the WebSocket and SSE report, so a
    /// client sees which version answered.
    pub version: String,
    /// `APP_COLOR`, else `CUTOVER_COLOR` (which cutover sets on every app
    /// container it starts), else `unknown`.
    pub color: String,
    /// `HOSTNAME`: the container ID under Docker, which differs between the
    /// blue and the green container even when the color is unknown.
    pub instance: String,
    /// `PORT`.
    pub port: u16,
    /// `OAUTH_AUTHORIZE_URL`: where `/api/v1/open/oauth/start` redirects,
    /// with `state=` appended. Defaults to this app's own callback, which
    /// stands in for the provider sending the user back.
    pub oauth_authorize_url: String,
    /// `TICK_INTERVAL_MS`: the period of WebSocket ticks and SSE events.
    pub tick: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            redis_host: "127.0.0.1".into(),
            redis_port: 6379,
            version: "dev".into(),
            color: "unknown".into(),
            instance: "local".into(),
            port: 8080,
            oauth_authorize_url: crate::CALLBACK_PATH.into(),
            tick: Duration::from_secs(1),
        }
    }
}

impl Config {
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(|k| std::env::var(k).ok())
    }

    /// Empty values count as unset, as Compose's `${VAR:-default}` does.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let get = |k: &str| {
            get(k)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let d = Config::default();
        let port = |key: &'static str, default: u16| -> Result<u16, ConfigError> {
            match get(key) {
                None => Ok(default),
                Some(v) => v.parse::<u16>().map_err(|_| ConfigError::Invalid {
                    key,
                    value: v,
                    what: "port",
                    hint: "use a number from 0 to 65535",
                }),
            }
        };
        let tick = match get("TICK_INTERVAL_MS") {
            None => d.tick,
            Some(v) => match v.parse::<u64>() {
                Ok(ms) if ms > 0 => Duration::from_millis(ms),
                _ => {
                    return Err(ConfigError::Invalid {
                        key: "TICK_INTERVAL_MS",
                        value: v,
                        what: "interval",
                        hint: "use a whole number of milliseconds above 0",
                    })
                }
            },
        };
        Ok(Config {
            redis_host: get("REDIS_HOST").unwrap_or(d.redis_host),
            redis_port: port("REDIS_PORT", d.redis_port)?,
            version: get("APP_VERSION").unwrap_or(d.version),
            color: get("APP_COLOR")
                .or_else(|| get("CUTOVER_COLOR"))
                .unwrap_or(d.color),
            instance: get("HOSTNAME").unwrap_or(d.instance),
            port: port("PORT", d.port)?,
            oauth_authorize_url: get("OAUTH_AUTHORIZE_URL").unwrap_or(d.oauth_authorize_url),
            tick,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn from(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| m.get(k).cloned())
    }

    #[test]
    fn defaults_apply_to_unset_and_empty_values() {
        let c = from(&[("APP_VERSION", ""), ("REDIS_PORT", " ")]).unwrap();
        assert_eq!(c, Config::default());
    }

    #[test]
    fn reads_the_field_report_keys() {
        let c = from(&[
            ("REDIS_HOST", "redis"),
            ("REDIS_PORT", "6380"),
            ("APP_VERSION", "42"),
            ("CUTOVER_COLOR", "green"),
            ("PORT", "9000"),
            ("TICK_INTERVAL_MS", "50"),
        ])
        .unwrap();
        assert_eq!(c.redis_host, "redis");
        assert_eq!(c.redis_port, 6380);
        assert_eq!(c.version, "42");
        assert_eq!(c.color, "green");
        assert_eq!(c.port, 9000);
        assert_eq!(c.tick, Duration::from_millis(50));
    }

    #[test]
    fn app_color_wins_over_cutover_color() {
        let c = from(&[("APP_COLOR", "blue"), ("CUTOVER_COLOR", "green")]).unwrap();
        assert_eq!(c.color, "blue");
    }

    #[test]
    fn a_bad_port_names_the_key_and_hints() {
        let e = from(&[("REDIS_PORT", "redis")]).unwrap_err().to_string();
        assert!(
            e.starts_with("REDIS_PORT=\"redis\" is not a valid port"),
            "{e}"
        );
        assert!(e.contains("\nhint: "), "{e}");
        assert!(from(&[("TICK_INTERVAL_MS", "0")]).is_err());
    }
}
