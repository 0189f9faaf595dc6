variable "name" {
  description = "Prefix of every resource name, e.g. figachechnaya-prod."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,30}$", var.name))
    error_message = "name must be 3-31 characters of lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "cidr_block" {
  description = "IPv4 range of the VPC, /16 to /20. Public subnets take /24-equivalents of its first sixteenth, private subnets the following sixteenths."
  type        = string

  validation {
    condition     = can(cidrhost(var.cidr_block, 0)) && tonumber(split("/", var.cidr_block)[1]) >= 16 && tonumber(split("/", var.cidr_block)[1]) <= 20
    error_message = "cidr_block must be an IPv4 CIDR block with a prefix length from /16 to /20."
  }
}

variable "availability_zone_count" {
  description = "How many availability zones the subnets span (one public and one private subnet in each)."
  type        = number

  validation {
    condition     = var.availability_zone_count >= 2 && var.availability_zone_count <= 3
    error_message = "availability_zone_count must be 2 or 3: EKS needs at least two zones, and three are enough for RDS and for spreading the Kafka nodes."
  }
}

variable "single_nat_gateway" {
  description = "One NAT gateway for all private subnets (cheaper) instead of one per availability zone (survives the loss of a zone)."
  type        = bool
}

variable "cluster_name" {
  description = "Name of the EKS cluster that places load balancers in these subnets; used in the subnets' kubernetes.io/cluster tag."
  type        = string
}
