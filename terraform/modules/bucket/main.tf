# The bucket of the rendered PNG images. Anyone may read an image (GET of an object under the
# prefix): that is how the page downloads it. Nothing else is public: no listing, no writes, no
# ACLs (object ownership is enforced, so ACLs are disabled and uploads carry none). imagizer
# writes with the access key of an IAM user that can only read and write objects under the
# prefix and list the bucket.

locals {
  objects_arn = "${aws_s3_bucket.this.arn}/${var.object_prefix}*"
}

resource "aws_s3_bucket" "this" {
  bucket        = var.bucket_name
  force_destroy = var.force_destroy
}

resource "aws_s3_bucket_ownership_controls" "this" {
  bucket = aws_s3_bucket.this.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "this" {
  bucket = aws_s3_bucket.this.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

# Public ACLs stay blocked; a public bucket policy is allowed, since the policy below is what
# makes the images readable.
resource "aws_s3_bucket_public_access_block" "this" {
  bucket = aws_s3_bucket.this.id

  block_public_acls       = true
  ignore_public_acls      = true
  block_public_policy     = false
  restrict_public_buckets = false
}

resource "aws_s3_bucket_policy" "this" {
  bucket = aws_s3_bucket.this.id

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "PublicReadOfImages"
        Effect    = "Allow"
        Principal = "*"
        Action    = "s3:GetObject"
        Resource  = local.objects_arn
      },
      {
        Sid       = "DenyPlainHttp"
        Effect    = "Deny"
        Principal = "*"
        Action    = "s3:*"
        Resource  = [aws_s3_bucket.this.arn, "${aws_s3_bucket.this.arn}/*"]
        Condition = {
          Bool = { "aws:SecureTransport" = "false" }
        }
      },
    ]
  })

  depends_on = [aws_s3_bucket_public_access_block.this]
}

resource "aws_iam_user" "imagizer" {
  name = var.imagizer_user_name
  path = "/figachechnaya/"
}

resource "aws_iam_user_policy" "imagizer" {
  name = "images-bucket"
  user = aws_iam_user.imagizer.name

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid      = "ReadWriteImages"
        Effect   = "Allow"
        Action   = ["s3:GetObject", "s3:PutObject"]
        Resource = local.objects_arn
      },
      {
        # Lets a HEAD of a missing image answer 404 rather than 403.
        Sid      = "ListImages"
        Effect   = "Allow"
        Action   = "s3:ListBucket"
        Resource = aws_s3_bucket.this.arn
      },
    ]
  })
}

resource "aws_iam_access_key" "imagizer" {
  user = aws_iam_user.imagizer.name
}
