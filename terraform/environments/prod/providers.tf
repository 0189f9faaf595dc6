provider "aws" {
  region = var.region

  default_tags {
    tags = local.tags
  }
}

# A short-lived token of the identity running Terraform, which created the cluster and so is
# its administrator (EKS access entry bootstrap).
data "aws_eks_cluster_auth" "this" {
  name = module.kubernetes.cluster_name
}

provider "kubernetes" {
  host                   = module.kubernetes.cluster_endpoint
  cluster_ca_certificate = base64decode(module.kubernetes.cluster_ca_certificate)
  token                  = data.aws_eks_cluster_auth.this.token
}

provider "helm" {
  kubernetes = {
    host                   = module.kubernetes.cluster_endpoint
    cluster_ca_certificate = base64decode(module.kubernetes.cluster_ca_certificate)
    token                  = data.aws_eks_cluster_auth.this.token
  }
}
