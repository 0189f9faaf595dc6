//! The imagizer service: renders every figalized phrase as a PNG and stores it.
//!
//! Jobs arrive from Kafka ([`kafka`]) or, in the one-process site, from an in-process queue
//! ([`local`]); either way [`pipeline`] runs them: skip what is stored, else [`render`] and
//! upload to the [`store`] (S3 or a local directory). [`api`] tells clients where an image is.

pub mod api;
pub mod kafka;
pub mod local;
pub mod pipeline;
pub mod render;
pub mod store;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use common::app::{Process, ServiceRoutes};
use common::config::{ConfigError, Env, HttpConfig};
use common::health::{CheckFuture, ReadinessCheck};
use common::image_job::JobSink;
use common::kafka::KafkaSettings;
use common::secret::Secret;
use common::server::Server;
use rdkafka::consumer::Consumer;

use crate::kafka::JobConsumer;
use crate::pipeline::{Backoff, Pipeline, PipelineMetrics};
use crate::store::{DirStore, ImageStore, S3Settings, S3Store, UrlMode};

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

/// Where jobs come from.
pub enum JobSource {
    /// The in-process queue; its sending side goes to figalize.
    Local(tokio::sync::mpsc::Receiver<common::image_job::ImageJob>),
    /// The Kafka topic.
    Kafka(KafkaSettings),
}

/// The service, ready to be mounted in `process`, consuming jobs from `source`.
pub fn service(
    process: &Process,
    settings: &Settings,
    source: JobSource,
) -> anyhow::Result<ServiceRoutes> {
    let (store, directory): (Arc<dyn ImageStore>, _) = match &settings.store {
        StoreSettings::S3(s3) => (Arc::new(S3Store::new(s3)), None),
        StoreSettings::Directory { path, base_url } => {
            let directory = Arc::new(
                DirStore::open(path, base_url.clone())
                    .with_context(|| format!("creating the image directory {}", path.display()))?,
            );
            (
                Arc::clone(&directory) as Arc<dyn ImageStore>,
                Some(directory),
            )
        }
    };
    tracing::info!(store = store.kind(), "image store configured");
    process.health.add(Arc::new(StoreCheck(Arc::clone(&store))));
    let pipeline = Arc::new(Pipeline::new(
        Arc::clone(&store),
        PipelineMetrics::new(&process.registry),
        Backoff {
            min: Duration::from_millis(100).min(settings.max_backoff),
            max: settings.max_backoff,
        },
    ));
    match source {
        JobSource::Local(jobs) => {
            process.spawn(local::consume(
                jobs,
                pipeline,
                settings.parallelism,
                process.drained(),
            ));
        }
        JobSource::Kafka(kafka) => {
            start_kafka(process, settings, &kafka, pipeline)?;
        }
    }
    Ok(ServiceRoutes::new(
        "imagizer",
        "Renders every figalized phrase as a PNG; tells where the image is.",
        api::router(api::AppState { store, directory }),
    ))
}

fn start_kafka(
    process: &Process,
    settings: &Settings,
    kafka: &KafkaSettings,
    pipeline: Arc<Pipeline>,
) -> anyhow::Result<()> {
    // The broker may start after us: topics are created in the background, and the consumer
    // (which librdkafka reconnects) starts right away.
    process.spawn(common::kafka::ensure_topics_in_background(
        kafka.clone(),
        process.stopping(),
    ));
    let consumer = Arc::new(kafka::consumer(kafka).context("creating the Kafka consumer")?);
    let dead_letters =
        kafka::dead_letter_producer(kafka).context("creating the dead-letter producer")?;
    process.health.add(Arc::new(ConsumerCheck {
        consumer: Arc::clone(&consumer),
        topic: kafka.topic.clone(),
    }));
    process.spawn(kafka::consume(
        consumer,
        dead_letters,
        pipeline,
        kafka::ConsumeConfig {
            parallelism: settings.parallelism,
            topic: kafka.topic.clone(),
            dead_letter_topic: kafka.dead_letter_topic.clone(),
        },
        kafka::ConsumerMetrics::new(&process.registry),
        process.stopping(),
    ));
    Ok(())
}

/// Readiness follows the image store.
struct StoreCheck(Arc<dyn ImageStore>);

impl ReadinessCheck for StoreCheck {
    fn name(&self) -> &'static str {
        "image_store"
    }

    fn check(&self) -> CheckFuture<'_> {
        Box::pin(async move {
            self.0.ping().await.map_err(|err| {
                tracing::warn!(error = %err, "readiness: image store check failed");
                "unreachable".to_owned()
            })
        })
    }
}

/// Readiness follows the broker: the job topic's metadata must be readable.
struct ConsumerCheck {
    consumer: Arc<JobConsumer>,
    topic: String,
}

impl ReadinessCheck for ConsumerCheck {
    fn name(&self) -> &'static str {
        "kafka"
    }

    fn check(&self) -> CheckFuture<'_> {
        let consumer = Arc::clone(&self.consumer);
        let topic = self.topic.clone();
        Box::pin(async move {
            let metadata = tokio::task::spawn_blocking(move || {
                consumer
                    .fetch_metadata(Some(&topic), Duration::from_millis(700))
                    .map(|metadata| {
                        metadata
                            .topics()
                            .iter()
                            .any(|t| t.error().is_none() && !t.partitions().is_empty())
                    })
            })
            .await
            .map_err(|_| "the check failed".to_owned())?;
            match metadata {
                Ok(true) => Ok(()),
                Ok(false) => Err("the job topic does not exist yet".to_owned()),
                Err(err) => {
                    tracing::warn!(error = %err, "readiness: Kafka check failed");
                    Err("unreachable".to_owned())
                }
            }
        })
    }
}

/// The local queue for the one-process site: the sink for figalize, the source for imagizer.
pub fn local_queue(settings: &Settings, process: &Process) -> (Arc<dyn JobSink>, JobSource) {
    let (sink, jobs) = local::queue(settings.queue, &process.registry);
    (Arc::new(sink), JobSource::Local(jobs))
}

/// The imagizer service on its own, bound to `IMAGIZER_API_PORT` (default 8003), consuming
/// from Kafka.
pub async fn build(env: &Env) -> anyhow::Result<Server> {
    let http = HttpConfig::from_env(env, "IMAGIZER_API_PORT", 8003)?;
    let settings = Settings::from_env(env)?;
    let kafka = KafkaSettings::from_env(env)?;
    let process = Process::new("imagizer");
    let routes = service(&process, &settings, JobSource::Kafka(kafka))?;
    let app = common::app::build(&process, &http, vec![routes]);
    Ok(Server::bind(&http, &process)
        .await
        .with_context(|| format!("listening on {}", http.addr))?
        .route(app))
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
