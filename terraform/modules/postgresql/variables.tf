variable "name" {
  description = "Identifier of the RDS instance and prefix of its companions, e.g. figachechnaya-prod."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,50}$", var.name))
    error_message = "name must be 3-51 characters of lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "vpc_id" {
  description = "VPC of the database's security group."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets, in at least two availability zones, that the instance (and its Multi-AZ standby) may be placed in."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 2
    error_message = "An RDS subnet group needs subnets in at least two availability zones."
  }
}

variable "allowed_security_group_ids" {
  description = "Security groups whose members may connect on port 5432 (the Kubernetes nodes, and so history's pods)."
  type        = list(string)
}

variable "engine_version" {
  description = "PostgreSQL major version (e.g. 17); RDS picks its current minor version and applies minor upgrades in the maintenance window."
  type        = string

  validation {
    condition     = can(regex("^1[4-9]$", var.engine_version))
    error_message = "engine_version must be a PostgreSQL major version from 14 to 19."
  }
}

variable "instance_class" {
  description = "RDS instance class, e.g. db.t4g.medium."
  type        = string

  validation {
    condition     = startswith(var.instance_class, "db.")
    error_message = "instance_class must be an RDS instance class such as db.t4g.medium."
  }
}

variable "allocated_storage" {
  description = "Initial storage in GiB (gp3)."
  type        = number

  validation {
    condition     = var.allocated_storage >= 20
    error_message = "allocated_storage must be at least 20 GiB."
  }
}

variable "max_allocated_storage" {
  description = "Ceiling in GiB up to which RDS grows the storage on its own."
  type        = number

  validation {
    condition     = var.max_allocated_storage >= var.allocated_storage
    error_message = "max_allocated_storage must be at least allocated_storage."
  }
}

variable "multi_az" {
  description = "Keep a synchronous standby in another availability zone, failed over to automatically."
  type        = bool
}

variable "backup_retention_days" {
  description = "Days of automated backups (point-in-time recovery window)."
  type        = number

  validation {
    condition     = var.backup_retention_days >= 1 && var.backup_retention_days <= 35
    error_message = "backup_retention_days must be between 1 and 35."
  }
}

variable "deletion_protection" {
  description = "Refuse to delete the instance (turn off deliberately before a destroy). A final snapshot is taken either way."
  type        = bool
}

variable "database_name" {
  description = "Database created in the instance for history's table."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9_]{0,62}$", var.database_name))
    error_message = "database_name must start with a letter and hold only lowercase letters, digits and underscores (at most 63)."
  }
}

variable "username" {
  description = "The user that owns the database and that history connects as."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9_]{0,62}$", var.username)) && !contains(["admin", "postgres", "rdsadmin"], var.username)
    error_message = "username must start with a letter, hold only lowercase letters, digits and underscores, and not be a reserved name (admin, postgres, rdsadmin)."
  }
}

variable "password" {
  description = "The user's password; null generates one (random_password). Provide it through TF_VAR_postgresql_password or a secret store, never in a file."
  type        = string
  default     = null
  sensitive   = true

  validation {
    condition     = var.password == null || can(regex("^[A-Za-z0-9_~.-]{16,128}$", var.password))
    error_message = "The password must be 16-128 characters of letters, digits and _ ~ . - (characters that need no escaping in a connection URL)."
  }
}
