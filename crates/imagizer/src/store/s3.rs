//! Images in an S3 bucket (AWS, `MinIO`, Garage, any S3-compatible server).

use std::time::Duration;

use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ObjectCannedAcl;
use common::secret::Secret;

use super::{CACHE_CONTROL, ImageStore, StoreError, StoreFuture, file_name};

/// How image URLs are made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlMode {
    /// `<base><prefix><key>.png` on a public endpoint: a bucket readable by anyone (a
    /// public-read policy or ACL), a website endpoint such as Garage's, or a CDN in front.
    Public {
        /// Ends with `/`.
        base: String,
    },
    /// A presigned GET of the object, valid for the given time; the bucket stays private.
    Presigned(Duration),
}

/// Connection settings, from the original's `S3_*` variables and a few newer ones.
#[derive(Debug, Clone)]
pub struct S3Settings {
    /// `S3_ENDPOINT`; unset means AWS's own endpoints for the region.
    pub endpoint: Option<String>,
    /// `S3_REGION`.
    pub region: String,
    /// `S3_BUCKET`.
    pub bucket: String,
    /// `S3_PATH`: prefix of every object name, e.g. `images/`.
    pub prefix: String,
    /// `S3_ACCESS_KEY`.
    pub access_key: String,
    /// `S3_SECRET_KEY`.
    pub secret_key: Secret,
    /// `S3_FORCE_PATH_STYLE`: `http://host/bucket/key` instead of `http://bucket.host/key`.
    pub force_path_style: bool,
    /// `S3_OBJECT_ACL`: send `public-read` with each upload (servers without ACLs ignore it),
    /// or nothing when a bucket policy decides.
    pub public_read_acl: bool,
    /// `S3_CHECKSUMS`: `when_supported` (the SDK's default: a CRC on every upload) or
    /// `when_required`, for servers that reject checksums they do not know.
    pub checksums_when_required: bool,
    /// `S3_URL_MODE` with `S3_PUBLIC_URL` or `S3_PRESIGN_TTL_S`.
    pub urls: UrlMode,
    /// `S3_TIMEOUT_MS`: longest one operation may take, retries included.
    pub timeout: Duration,
}

/// A bucket of images.
pub struct S3Store {
    client: aws_sdk_s3::Client,
    bucket: String,
    prefix: String,
    public_read_acl: bool,
    urls: UrlMode,
}

impl S3Store {
    /// A client for the bucket; nothing is contacted until the first operation.
    pub fn new(settings: &S3Settings) -> Self {
        let credentials = Credentials::new(
            settings.access_key.clone(),
            settings.secret_key.expose().to_owned(),
            None,
            None,
            "figachechnaya-environment",
        );
        let mut config = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(settings.region.clone()))
            .credentials_provider(credentials)
            .force_path_style(settings.force_path_style)
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(2).min(settings.timeout))
                    .operation_timeout(settings.timeout)
                    .build(),
            );
        if settings.checksums_when_required {
            config = config
                .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
                .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
        }
        if let Some(endpoint) = &settings.endpoint {
            config = config.endpoint_url(endpoint);
        }
        Self {
            client: aws_sdk_s3::Client::from_conf(config.build()),
            bucket: settings.bucket.clone(),
            prefix: settings.prefix.clone(),
            public_read_acl: settings.public_read_acl,
            urls: settings.urls.clone(),
        }
    }

    fn object(&self, key: &str) -> String {
        format!("{}{}", self.prefix, file_name(key))
    }
}

/// An SDK error with its causes, which is where the useful part is.
fn describe(err: &(dyn std::error::Error + 'static)) -> StoreError {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    StoreError(text)
}

impl ImageStore for S3Store {
    fn kind(&self) -> &'static str {
        "s3"
    }

    fn exists<'a>(&'a self, key: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            match self
                .client
                .head_object()
                .bucket(&self.bucket)
                .key(self.object(key))
                .send()
                .await
            {
                Ok(_) => Ok(true),
                Err(err)
                    if err.as_service_error().is_some_and(
                        aws_sdk_s3::operation::head_object::HeadObjectError::is_not_found,
                    ) =>
                {
                    Ok(false)
                }
                Err(err) => Err(describe(&err)),
            }
        })
    }

    fn put<'a>(&'a self, key: &'a str, png: Vec<u8>) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut request = self
                .client
                .put_object()
                .bucket(&self.bucket)
                .key(self.object(key))
                .content_type("image/png")
                .cache_control(CACHE_CONTROL)
                .body(ByteStream::from(png));
            if self.public_read_acl {
                request = request.acl(ObjectCannedAcl::PublicRead);
            }
            request.send().await.map_err(|err| describe(&err))?;
            Ok(())
        })
    }

    fn url<'a>(&'a self, key: &'a str) -> StoreFuture<'a, String> {
        Box::pin(async move {
            match &self.urls {
                UrlMode::Public { base } => Ok(format!("{base}{}", self.object(key))),
                UrlMode::Presigned(ttl) => {
                    let config = PresigningConfig::expires_in(*ttl).map_err(StoreError::new)?;
                    let request = self
                        .client
                        .get_object()
                        .bucket(&self.bucket)
                        .key(self.object(key))
                        .presigned(config)
                        .await
                        .map_err(|err| describe(&err))?;
                    Ok(request.uri().to_owned())
                }
            }
        })
    }

    fn ping(&self) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            self.client
                .head_bucket()
                .bucket(&self.bucket)
                .send()
                .await
                .map_err(|err| describe(&err))?;
            Ok(())
        })
    }
}
