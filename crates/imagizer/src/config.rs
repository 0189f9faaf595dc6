//! The service's settings, read once from the environment.

use std::path::PathBuf;
use std::time::Duration;

use common::config::{ConfigError, Env};
use common::secret::Secret;

use crate::api;
use crate::store::{S3Settings, UrlMode};

/// Where images are kept.
#[derive(Debug, Clone)]
pub enum StoreSettings {
    /// An S3 bucket: when `S3_BUCKET` is set.
    S3(Box<S3Settings>),
    /// A directory served by imagizer at `base_url`: `$DATA_DIR/images` by default.
    Directory {
        /// `IMAGES_DIR`, else `$DATA_DIR/images`.
        path: PathBuf,
        /// `IMAGES_BASE_URL`, else imagizer's own path (relative, so it works behind any host).
        base_url: String,
    },
}

/// The service's own settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The image store.
    pub store: StoreSettings,
    /// `IMAGIZER_PARALLELISM`: jobs worked on at once.
    pub parallelism: usize,
    /// `IMAGIZER_PREFETCH`: jobs received from Kafka ahead of the free slots; fetching pauses
    /// when this many wait and resumes when a quarter of them are left.
    pub prefetch: usize,
    /// `IMAGIZER_QUEUE`: jobs the in-process queue holds (one-process site only).
    pub queue: usize,
    /// `IMAGE_STORE_MAX_BACKOFF_MS`: longest wait between retries of a failed store operation.
    pub max_backoff: Duration,
}

impl Settings {
    /// Reads the settings from the environment.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            store: store_settings(env)?,
            parallelism: env.positive("IMAGIZER_PARALLELISM", 8)?,
            prefetch: env.positive("IMAGIZER_PREFETCH", 512)?,
            queue: env.positive("IMAGIZER_QUEUE", 10_000)?,
            max_backoff: env.millis("IMAGE_STORE_MAX_BACKOFF_MS", Duration::from_secs(5))?,
        })
    }
}

fn store_settings(env: &Env) -> Result<StoreSettings, ConfigError> {
    let Some(bucket) = env.text("S3_BUCKET")? else {
        let data_dir: PathBuf = env.or("DATA_DIR", PathBuf::from("./data"))?;
        return Ok(StoreSettings::Directory {
            path: env.or("IMAGES_DIR", data_dir.join("images"))?,
            base_url: env.or("IMAGES_BASE_URL", api::IMAGES_PATH.to_owned())?,
        });
    };
    let endpoint = env.text("S3_ENDPOINT")?;
    let urls = match env.or("S3_URL_MODE", "public".to_owned())?.as_str() {
        "public" => {
            let default = endpoint
                .as_ref()
                .map(|endpoint| format!("{}/{bucket}/", endpoint.trim_end_matches('/')));
            let base = match env.text("S3_PUBLIC_URL")?.or(default) {
                Some(base) => base,
                None => format!("https://{bucket}.s3.amazonaws.com/"),
            };
            UrlMode::Public {
                base: format!("{}/", base.trim_end_matches('/')),
            }
        }
        "presigned" => UrlMode::Presigned(Duration::from_secs(
            env.positive("S3_PRESIGN_TTL_S", 3600)? as u64,
        )),
        _ => {
            return Err(ConfigError::new(
                "S3_URL_MODE",
                "must be public or presigned",
            ));
        }
    };
    let acl = env.or("S3_OBJECT_ACL", "public-read".to_owned())?;
    let checksums = env.or("S3_CHECKSUMS", "when_supported".to_owned())?;
    Ok(StoreSettings::S3(Box::new(S3Settings {
        force_path_style: env.or("S3_FORCE_PATH_STYLE", endpoint.is_some())?,
        endpoint,
        region: env.or("S3_REGION", "us-east-1".to_owned())?,
        prefix: env.or("S3_PATH", String::new())?,
        access_key: env.required("S3_ACCESS_KEY")?,
        secret_key: Secret::new(env.required::<String>("S3_SECRET_KEY")?),
        public_read_acl: match acl.as_str() {
            "public-read" => true,
            "none" => false,
            _ => {
                return Err(ConfigError::new(
                    "S3_OBJECT_ACL",
                    "must be public-read or none",
                ));
            }
        },
        checksums_when_required: match checksums.as_str() {
            "when_supported" => false,
            "when_required" => true,
            _ => {
                return Err(ConfigError::new(
                    "S3_CHECKSUMS",
                    "must be when_supported or when_required",
                ));
            }
        },
        urls,
        timeout: env.millis("S3_TIMEOUT_MS", Duration::from_secs(5))?,
        bucket,
    })))
}
#[cfg(test)]
mod tests {
    use super::*;

    fn store(pairs: &[(&str, &str)]) -> Result<StoreSettings, ConfigError> {
        store_settings(&Env::from_pairs(pairs.iter().copied()))
    }

    const S3: [(&str, &str); 4] = [
        ("S3_BUCKET", "images"),
        ("S3_ENDPOINT", "http://127.0.0.1:3900/"),
        ("S3_ACCESS_KEY", "key"),
        ("S3_SECRET_KEY", "secret"),
    ];

    #[test]
    fn no_bucket_means_a_directory_under_the_data_dir_served_by_imagizer() {
        let StoreSettings::Directory { path, base_url } = store(&[("DATA_DIR", "/srv")]).unwrap()
        else {
            panic!("a directory");
        };
        assert_eq!(path, PathBuf::from("/srv/images"));
        assert_eq!(base_url, "/api/imagizer/images/");
    }

    #[test]
    fn an_endpoint_means_path_style_and_public_urls_on_it() {
        let StoreSettings::S3(s3) = store(&S3).unwrap() else {
            panic!("S3");
        };
        assert!(s3.force_path_style);
        assert_eq!(
            s3.urls,
            UrlMode::Public {
                base: "http://127.0.0.1:3900/images/".into()
            }
        );
        assert!(s3.public_read_acl);
        assert!(!s3.checksums_when_required);
        assert_eq!(format!("{:?}", s3.secret_key), "***");
    }

    #[test]
    fn url_modes_acls_and_checksums_are_configurable() {
        let mut pairs = S3.to_vec();
        pairs.extend([
            ("S3_URL_MODE", "presigned"),
            ("S3_PRESIGN_TTL_S", "60"),
            ("S3_OBJECT_ACL", "none"),
            ("S3_CHECKSUMS", "when_required"),
            ("S3_FORCE_PATH_STYLE", "false"),
        ]);
        let StoreSettings::S3(s3) = store(&pairs).unwrap() else {
            panic!("S3");
        };
        assert_eq!(s3.urls, UrlMode::Presigned(Duration::from_mins(1)));
        assert!(!s3.public_read_acl && s3.checksums_when_required && !s3.force_path_style);
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (name, value) in [
            ("S3_URL_MODE", "signed"),
            ("S3_OBJECT_ACL", "private"),
            ("S3_CHECKSUMS", "never"),
        ] {
            let mut pairs = S3.to_vec();
            pairs.push((name, value));
            assert_eq!(store(&pairs).unwrap_err().variable, name);
        }
        let without_key: Vec<_> = S3
            .into_iter()
            .filter(|(n, _)| *n != "S3_ACCESS_KEY")
            .collect();
        assert_eq!(store(&without_key).unwrap_err().variable, "S3_ACCESS_KEY");
    }
}
