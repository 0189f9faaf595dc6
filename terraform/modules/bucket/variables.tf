variable "bucket_name" {
  description = "Name of the S3 bucket of the PNG images (S3_BUCKET); globally unique. No dots, so that https://<bucket>.s3.<region>.amazonaws.com/ matches Amazon's certificate."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$", var.bucket_name))
    error_message = "bucket_name must be 3-63 characters of lowercase letters, digits and hyphens, starting and ending with a letter or digit."
  }
}

variable "object_prefix" {
  description = "Prefix of every image's object name (S3_PATH), e.g. images/ or empty. Anonymous read and imagizer's access are limited to it."
  type        = string

  validation {
    condition     = var.object_prefix == "" || can(regex("^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*/$", var.object_prefix))
    error_message = "object_prefix must be empty or a path ending with a slash, such as images/."
  }
}

variable "imagizer_user_name" {
  description = "Name of the IAM user whose access key imagizer signs its S3 requests with (S3_ACCESS_KEY, S3_SECRET_KEY)."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9+=,.@_-]{1,64}$", var.imagizer_user_name))
    error_message = "imagizer_user_name must be a valid IAM user name (1-64 characters of letters, digits and +=,.@_-)."
  }
}

variable "force_destroy" {
  description = "Let terraform destroy delete a bucket that still holds images. Images are re-rendered on demand, so losing them is recoverable."
  type        = bool
}
