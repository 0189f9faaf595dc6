# Figachechnaya in production on AWS: the network, EKS, RDS for PostgreSQL, the S3 bucket of
# images, the cluster add-ons, Kafka in the cluster (Strimzi) and the site's DNS.

locals {
  name = "${var.project}-${var.environment}"

  tags = merge(var.tags, {
    Project     = var.project
    Environment = var.environment
    ManagedBy   = "terraform"
  })
}

module "network" {
  source = "../../modules/network"

  name                    = local.name
  cidr_block              = var.vpc_cidr
  availability_zone_count = var.availability_zone_count
  single_nat_gateway      = var.single_nat_gateway
  cluster_name            = local.name
}

module "kubernetes" {
  source = "../../modules/kubernetes"

  name                = local.name
  kubernetes_version  = var.kubernetes_version
  subnet_ids          = module.network.private_subnet_ids
  public_access_cidrs = var.kubernetes_api_allowed_cidrs
  node_instance_types = var.node_instance_types
  node_capacity_type  = var.node_capacity_type
  node_disk_size      = var.node_disk_size
  node_min_size       = var.node_min_size
  node_desired_size   = var.node_desired_size
  node_max_size       = var.node_max_size
  log_retention_days  = var.log_retention_days
}

module "postgresql" {
  source = "../../modules/postgresql"

  name                       = local.name
  vpc_id                     = module.network.vpc_id
  subnet_ids                 = module.network.private_subnet_ids
  allowed_security_group_ids = [module.kubernetes.cluster_security_group_id]
  engine_version             = var.postgresql_version
  instance_class             = var.postgresql_instance_class
  allocated_storage          = var.postgresql_allocated_storage
  max_allocated_storage      = var.postgresql_max_allocated_storage
  multi_az                   = var.postgresql_multi_az
  backup_retention_days      = var.postgresql_backup_retention_days
  deletion_protection        = var.deletion_protection
  database_name              = var.postgresql_database_name
  username                   = var.postgresql_username
  password                   = var.postgresql_password
}

module "kafka" {
  source = "../../modules/kafka"

  kafka_version     = var.kafka_version
  replicas          = var.kafka_replicas
  storage_size      = var.kafka_storage_size
  storage_class     = module.platform.storage_class_name
  resources         = var.kafka_resources
  client_namespaces = var.kafka_client_namespaces

  # The nodes and the EBS CSI driver must be up before the brokers' volumes are made.
  depends_on = [module.kubernetes]
}

module "bucket" {
  source = "../../modules/bucket"

  bucket_name        = var.images_bucket_name
  object_prefix      = var.images_prefix
  imagizer_user_name = "${local.name}-imagizer"
  force_destroy      = var.images_force_destroy
}

module "platform" {
  source = "../../modules/platform"

  ingress_replicas        = var.ingress_replicas
  prometheus_retention    = var.prometheus_retention
  prometheus_storage_size = var.prometheus_storage_size

  # The nodes and the EBS CSI driver must be up before anything is scheduled.
  depends_on = [module.kubernetes]
}

module "dns" {
  source = "../../modules/dns"

  zone_name              = var.dns_zone_name
  site_domain            = var.site_domain
  load_balancer_hostname = module.platform.ingress_load_balancer_hostname
}
