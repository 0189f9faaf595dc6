output "bucket_name" {
  description = "Name of the images bucket (S3_BUCKET)."
  value       = aws_s3_bucket.this.id
}

output "bucket_arn" {
  description = "ARN of the images bucket."
  value       = aws_s3_bucket.this.arn
}

output "public_base_url" {
  description = "Base URL the images are publicly readable at (S3_PUBLIC_URL); the object name follows it."
  value       = "https://${aws_s3_bucket.this.bucket_regional_domain_name}/"
}

output "imagizer_access_key_id" {
  description = "Access key ID of imagizer's IAM user (S3_ACCESS_KEY)."
  value       = aws_iam_access_key.imagizer.id
  sensitive   = true
}

output "imagizer_secret_access_key" {
  description = "Secret access key of imagizer's IAM user (S3_SECRET_KEY)."
  value       = aws_iam_access_key.imagizer.secret
  sensitive   = true
}
