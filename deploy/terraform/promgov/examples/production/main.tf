# A production install: 6 ingesters on SSD volumes, 3 to 30 distributors,
# Mimir as the backend, per-tenant limits, a Grafana token from an existing
# Secret for the usage analysis, prometheus-operator scraping, and the
# chart's other production settings (zones, Ingress) as extra values.
# Sizing and the upgrade procedure: docs/deploy.md.

terraform {
  required_version = ">= 1.5.0"

  required_providers {
    helm = {
      source  = "hashicorp/helm"
      version = "~> 3.0"
    }
  }
}

provider "helm" {
  kubernetes = {
    config_path    = "~/.kube/config"
    config_context = "production"
  }
}

module "promgov" {
  source = "../.."

  namespace        = "observability"
  image_repository = "registry.example.com/promgov/promgov"
  image_tag        = "v0.1.0"

  backend_url           = "http://mimir-distributor.mimir.svc.cluster.local:8080/api/v1/push"
  backend_tenant_header = "X-Scope-OrgID"

  ingester_replicas        = 6
  distributor_min_replicas = 3
  distributor_max_replicas = 30
  storage_class            = "fast-ssd"
  storage_size             = "200Gi"
  wal_max_size_bytes       = 171798691840 # 160 GiB

  default_limits = {
    max_series_per_metric = 200000
    max_values_per_label  = 20000
    max_series_per_tenant = 10000000
  }
  tenant_limits = {
    team-batch = { max_series_per_tenant = 30000000 }
    team-edge  = { max_series_per_tenant = 2000000, max_series_per_metric = 50000 }
  }

  existing_secrets = ["promgov-grafana"]
  service_monitor  = true

  extra_values = [yamlencode({
    config = {
      usage = {
        dashboards = {
          grafana = [{
            url        = "http://grafana.monitoring.svc.cluster.local"
            token_file = "/etc/promgov/secrets/promgov-grafana/token"
          }]
        }
      }
    }
    ingester = {
      flushDeadlineSeconds = 120
      antiAffinity         = "hard"
      resources = {
        requests = { cpu = "2", memory = "8Gi" }
        limits   = { memory = "12Gi" }
      }
    }
    distributor = {
      resources = {
        requests = { cpu = "2", memory = "1Gi" }
        limits   = { memory = "4Gi" }
      }
      ingress = {
        enabled   = true
        className = "nginx"
        hosts = [{
          host  = "remote-write.example.com"
          paths = [{ path = "/api/v1/write", pathType = "Exact" }]
        }]
        tls = [{ hosts = ["remote-write.example.com"], secretName = "remote-write-tls" }]
      }
    }
  })]
}

output "remote_write_url" {
  description = "Point senders' remote_write here (inside the cluster; remote-write.example.com outside)."
  value       = module.promgov.remote_write_url
}
