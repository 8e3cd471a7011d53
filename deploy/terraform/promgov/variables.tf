variable "release_name" {
  description = "Helm release name. Resources are called <release_name>-promgov-*, or <release_name>-* when it already contains \"promgov\"."
  type        = string
  default     = "promgov"
}

variable "namespace" {
  description = "Namespace to install promgov in."
  type        = string
  default     = "promgov"
}

variable "create_namespace" {
  description = "Create the namespace if it does not exist."
  type        = bool
  default     = true
}

variable "chart" {
  description = "Chart to install: a path (default: the chart in this repository) or a chart name in chart_repository."
  type        = string
  default     = null
}

variable "chart_repository" {
  description = "Helm repository URL holding the chart, when chart is a name rather than a path."
  type        = string
  default     = null
}

variable "chart_version" {
  description = "Chart version to install from chart_repository (null: the latest)."
  type        = string
  default     = null
}

variable "image_repository" {
  description = "promgov image repository (the image `make image` builds)."
  type        = string
  default     = "promgov/promgov"
}

variable "image_tag" {
  description = "promgov image tag (null: the chart's appVersion)."
  type        = string
  default     = null
}

variable "backend_url" {
  description = "Remote write URL of the storage backend the ingesters forward to (Prometheus, Mimir, VictoriaMetrics, Thanos receive)."
  type        = string

  validation {
    condition     = can(regex("^https?://[^/]+", var.backend_url))
    error_message = "backend_url must be an absolute http(s) URL, e.g. http://mimir-distributor.mimir:8080/api/v1/push."
  }
}

variable "backend_protocol" {
  description = "Remote write protocol to start with: 1 or 2 (2 falls back to 1 by itself)."
  type        = number
  default     = 2

  validation {
    condition     = contains([1, 2], var.backend_protocol)
    error_message = "backend_protocol must be 1 or 2."
  }
}

variable "backend_tenant_header" {
  description = "HTTP header carrying the tenant to the backend (\"\": none)."
  type        = string
  default     = "X-Scope-OrgID"
}

variable "ingester_replicas" {
  description = "Number of ingesters (each owns a share of the metrics; sizing: docs/deploy.md)."
  type        = number
  default     = 3

  validation {
    condition     = var.ingester_replicas >= 1
    error_message = "ingester_replicas must be at least 1."
  }
}

variable "distributor_min_replicas" {
  description = "Fewest distributors the autoscaler keeps."
  type        = number
  default     = 2

  validation {
    condition     = var.distributor_min_replicas >= 1
    error_message = "distributor_min_replicas must be at least 1."
  }
}

variable "distributor_max_replicas" {
  description = "Most distributors the autoscaler starts (at least distributor_min_replicas)."
  type        = number
  default     = 10
}

variable "storage_class" {
  description = "StorageClass of the ingesters' WAL volumes (null: the cluster's default)."
  type        = string
  default     = null
}

variable "storage_size" {
  description = "Size of each ingester's WAL volume, e.g. 50Gi. Keep wal_max_size_bytes below it."
  type        = string
  default     = "50Gi"
}

variable "wal_max_size_bytes" {
  description = "Largest WAL of one ingester, in bytes; beyond it senders get 429 (WAL disk per hour of backend outage: docs/deploy.md)."
  type        = number
  default     = 42949672960
}

variable "default_limits" {
  description = "Cardinality limits of every tenant (cardinality.limits.defaults; docs/cardinality.md). Unset fields keep the chart's defaults."
  type = object({
    max_series_per_metric      = optional(number)
    max_series_per_metric_mode = optional(string)
    max_values_per_label       = optional(number)
    max_values_per_label_mode  = optional(string)
    max_series_per_tenant      = optional(number)
    max_series_per_tenant_mode = optional(string)
  })
  default = {}
}

variable "tenant_limits" {
  description = "Cardinality limits per tenant, overriding default_limits (cardinality.limits.tenants)."
  type = map(object({
    max_series_per_metric      = optional(number)
    max_series_per_metric_mode = optional(string)
    max_values_per_label       = optional(number)
    max_values_per_label_mode  = optional(string)
    max_series_per_tenant      = optional(number)
    max_series_per_tenant_mode = optional(string)
  }))
  default = {}
}

variable "secrets" {
  description = "Keys and values of a Secret the chart creates and mounts on every pod at /etc/promgov/secrets/<fullname>/<key> (tokens referenced by *_file settings)."
  type        = map(string)
  default     = {}
  sensitive   = true
}

variable "existing_secrets" {
  description = "Names of existing Secrets mounted on every pod at /etc/promgov/secrets/<name>/."
  type        = list(string)
  default     = []
}

variable "service_monitor" {
  description = "Create a prometheus-operator ServiceMonitor for the distributors and ingesters."
  type        = bool
  default     = false
}

variable "extra_values" {
  description = "More values files (YAML strings) for the chart, applied after this module's; see deploy/helm/promgov/README.md."
  type        = list(string)
  default     = []
}

variable "wait" {
  description = "Wait until every pod is ready before marking the release successful."
  type        = bool
  default     = true
}

variable "timeout" {
  description = "Seconds to wait for the release (an upgrade replaces ingesters one at a time)."
  type        = number
  default     = 1800
}
