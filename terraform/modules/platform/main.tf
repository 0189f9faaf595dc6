# The cluster add-ons, installed with Helm at pinned chart versions: kube-prometheus-stack
# (Prometheus Operator, Prometheus, Alertmanager, Grafana), cert-manager with its CRDs, and
# ingress-nginx behind an AWS network load balancer. Also the default StorageClass (gp3 EBS
# volumes through the EBS CSI driver) that Prometheus' volume is made from.

locals {
  ingress_namespace = "ingress-nginx"
  # The chart names the controller's Service <release>-controller.
  ingress_service = "ingress-nginx-controller"
  ingress_class   = "nginx"
}

resource "kubernetes_storage_class_v1" "gp3" {
  metadata {
    name = "gp3"

    annotations = {
      "storageclass.kubernetes.io/is-default-class" = "true"
    }
  }

  storage_provisioner    = "ebs.csi.aws.com"
  reclaim_policy         = "Delete"
  volume_binding_mode    = "WaitForFirstConsumer"
  allow_volume_expansion = true

  parameters = {
    type      = "gp3"
    encrypted = "true"
  }
}

resource "random_password" "grafana_admin" {
  length  = 32
  special = false
}

resource "helm_release" "kube_prometheus_stack" {
  name             = "kube-prometheus-stack"
  repository       = "https://prometheus-community.github.io/helm-charts"
  chart            = "kube-prometheus-stack"
  version          = var.kube_prometheus_stack_chart_version
  namespace        = "monitoring"
  create_namespace = true
  atomic           = true
  timeout          = 900

  values = [yamlencode({
    prometheus = {
      prometheusSpec = {
        # Pick up every PodMonitor, ServiceMonitor and PrometheusRule in the cluster, not only
        # those labelled for this release: the product's PodMonitor and rules carry their own
        # labels (observability/prometheus/kubernetes/).
        podMonitorSelectorNilUsesHelmValues     = false
        serviceMonitorSelectorNilUsesHelmValues = false
        ruleSelectorNilUsesHelmValues           = false
        retention                               = var.prometheus_retention
        storageSpec = {
          volumeClaimTemplate = {
            spec = {
              storageClassName = kubernetes_storage_class_v1.gp3.metadata[0].name
              accessModes      = ["ReadWriteOnce"]
              resources = {
                requests = { storage = var.prometheus_storage_size }
              }
            }
          }
        }
      }
    }
    grafana = {
      # Dashboards arrive as ConfigMaps labelled grafana_dashboard=1 in any namespace.
      sidecar = {
        dashboards = {
          enabled         = true
          label           = "grafana_dashboard"
          searchNamespace = "ALL"
        }
      }
    }
  })]

  set_sensitive = [
    {
      name  = "grafana.adminPassword"
      value = random_password.grafana_admin.result
    },
  ]
}

resource "helm_release" "cert_manager" {
  name             = "cert-manager"
  repository       = "https://charts.jetstack.io"
  chart            = "cert-manager"
  version          = var.cert_manager_chart_version
  namespace        = "cert-manager"
  create_namespace = true
  atomic           = true
  timeout          = 600

  values = [yamlencode({
    crds = {
      # The chart installs its CRDs and keeps them when the release is uninstalled, so that
      # the certificates in the cluster survive a reinstall.
      enabled = true
      keep    = true
    }
    prometheus = {
      servicemonitor = { enabled = true }
    }
  })]

  # The ServiceMonitor kind comes with kube-prometheus-stack.
  depends_on = [helm_release.kube_prometheus_stack]
}

resource "helm_release" "ingress_nginx" {
  name             = "ingress-nginx"
  repository       = "https://kubernetes.github.io/ingress-nginx"
  chart            = "ingress-nginx"
  version          = var.ingress_nginx_chart_version
  namespace        = local.ingress_namespace
  create_namespace = true
  atomic           = true
  timeout          = 900

  values = [yamlencode({
    controller = {
      replicaCount = var.ingress_replicas
      ingressClassResource = {
        name    = local.ingress_class
        default = true
      }
      service = {
        # Local keeps the client's address (for rate limits and logs): the load balancer
        # sends traffic only to nodes that run a controller pod.
        externalTrafficPolicy = "Local"
        annotations = {
          "service.beta.kubernetes.io/aws-load-balancer-type"                              = "nlb"
          "service.beta.kubernetes.io/aws-load-balancer-cross-zone-load-balancing-enabled" = "true"
        }
      }
      metrics = {
        enabled        = true
        serviceMonitor = { enabled = true }
      }
      topologySpreadConstraints = [{
        maxSkew           = 1
        topologyKey       = "topology.kubernetes.io/zone"
        whenUnsatisfiable = "ScheduleAnyway"
        labelSelector = {
          matchLabels = {
            "app.kubernetes.io/name"      = "ingress-nginx"
            "app.kubernetes.io/instance"  = "ingress-nginx"
            "app.kubernetes.io/component" = "controller"
          }
        }
      }]
    }
  })]

  depends_on = [helm_release.kube_prometheus_stack]
}

# Helm waits until the load balancer has an address, so the Service can be read right after.
data "kubernetes_service_v1" "ingress" {
  metadata {
    name      = local.ingress_service
    namespace = local.ingress_namespace
  }

  depends_on = [helm_release.ingress_nginx]
}
