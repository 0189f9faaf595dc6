# Kafka for the image jobs, in the cluster and run by Strimzi, exactly as the manifests in
# kubernetes/ expect it: the Strimzi Cluster Operator (Helm chart strimzi-kafka-operator) in
# namespace kafka, watching only that namespace, and the local chart ./chart, which makes the
# Kafka cluster: KRaft nodes that are controllers and brokers, a plaintext listener on 9092
# (the services' librdkafka has neither TLS nor SASL) and the Topic Operator, which provisions
# the KafkaTopics of kubernetes/base/kafkatopics.yaml. No topic is made here.

locals {
  operator_release = "strimzi-kafka-operator"
  cluster_release  = "figachechnaya-kafka"
  # The listener the services connect to: KAFKA_BOOTSTRAP's port.
  port = 9092
}

# The namespace of the operator, the cluster and the KafkaTopics. Strimzi's restricted Pod
# Security provider gives every pod it makes (the nodes, the Topic Operator) a security context
# that the restricted standard admits, and the operator's own pod has one below.
resource "kubernetes_namespace_v1" "kafka" {
  metadata {
    name = var.namespace

    labels = {
      "pod-security.kubernetes.io/enforce" = var.pod_security_standard
      "pod-security.kubernetes.io/audit"   = "restricted"
      "pod-security.kubernetes.io/warn"    = "restricted"
    }
  }
}

# The Cluster Operator, with the CRDs of the kafka.strimzi.io API (its chart's crds/: Helm
# installs them with the release and never upgrades them, see terraform/README.md, Versions).
resource "helm_release" "strimzi" {
  name       = local.operator_release
  repository = "https://strimzi.io/charts/"
  chart      = "strimzi-kafka-operator"
  version    = var.strimzi_chart_version
  namespace  = kubernetes_namespace_v1.kafka.metadata[0].name
  atomic     = true
  timeout    = 600

  values = [yamlencode({
    # Only the release's own namespace: the chart's default when no other is listed.
    watchAnyNamespace = false
    watchNamespaces   = []

    # Pods the operator makes get the security context of this Pod Security Standard.
    extraEnvs = [{
      name  = "STRIMZI_POD_SECURITY_PROVIDER_CLASS"
      value = var.pod_security_standard
    }]

    podSecurityContext = {
      runAsNonRoot   = true
      seccompProfile = { type = "RuntimeDefault" }
    }
    securityContext = {
      allowPrivilegeEscalation = false
      capabilities             = { drop = ["ALL"] }
    }
  })]
}

resource "helm_release" "cluster" {
  name      = local.cluster_release
  chart     = "${path.module}/chart"
  version   = yamldecode(file("${path.module}/chart/Chart.yaml")).version
  namespace = helm_release.strimzi.namespace
  atomic    = true
  timeout   = 300

  values = [yamlencode({
    clusterName  = var.cluster_name
    kafkaVersion = var.kafka_version
    replicas     = var.replicas
    storage = {
      size  = var.storage_size
      class = var.storage_class
    }
    resources = var.resources
    listener = {
      port              = local.port
      allowedNamespaces = var.client_namespaces
    }
  })]

  # The kafka.strimzi.io CRDs come with the operator's chart.
  depends_on = [helm_release.strimzi]
}
