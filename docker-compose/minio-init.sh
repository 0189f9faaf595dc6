#!/bin/sh
# Run once by compose.yaml's minio-init service (minio/mc image), after MinIO is ready; safe to
# run again. It makes the bucket imagizer stores the PNGs in, lets anyone download from it (the
# ingress serves it at /images/), and gives imagizer a MinIO user of its own that may only read
# and write that bucket.
#
# Environment: MINIO_ROOT_USER, MINIO_ROOT_PASSWORD, IMAGIZER_S3_ACCESS_KEY,
# IMAGIZER_S3_SECRET_KEY, BUCKET.
set -eu

policy=figachechnaya-imagizer
policy_file="${TMPDIR:-/tmp}/$policy.json"

mc alias set stack http://minio:9000 "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD" >/dev/null
mc mb --ignore-existing "stack/$BUCKET"
mc anonymous set download "stack/$BUCKET"

# imagizer asks whether an image exists (HeadObject: answered 404 rather than 403 only with
# ListBucket), stores it (PutObject), may sign GETs of it (presigned URLs), and its readiness
# asks for the bucket (HeadBucket: ListBucket).
cat >"$policy_file" <<POLICY
{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Effect": "Allow",
      "Action": ["s3:GetBucketLocation", "s3:ListBucket"],
      "Resource": ["arn:aws:s3:::$BUCKET"]
    },
    {
      "Effect": "Allow",
      "Action": ["s3:GetObject", "s3:PutObject"],
      "Resource": ["arn:aws:s3:::$BUCKET/*"]
    }
  ]
}
POLICY
mc admin policy create stack "$policy" "$policy_file"
mc admin user add stack "$IMAGIZER_S3_ACCESS_KEY" "$IMAGIZER_S3_SECRET_KEY"
# Attaching a policy that is already attached is an error: detach it first (an error too when
# it is not attached yet, hence the `|| true`).
mc admin policy detach stack "$policy" --user "$IMAGIZER_S3_ACCESS_KEY" >/dev/null 2>&1 || true
mc admin policy attach stack "$policy" --user "$IMAGIZER_S3_ACCESS_KEY"
echo "Bucket $BUCKET ready: public downloads, read and write for $IMAGIZER_S3_ACCESS_KEY"
