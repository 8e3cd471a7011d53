# Installs the promgov Helm chart (deploy/helm/promgov). Every variable maps
# onto a chart value; extra_values reaches the rest.

locals {
  chart    = coalesce(var.chart, "${path.module}/../../helm/promgov")
  fullname = strcontains(var.release_name, "promgov") ? var.release_name : "${var.release_name}-promgov"

  # Unset optional limits are left out, so the chart's defaults stay (a
  # null in Helm values would delete them).
  default_limits = { for k, v in var.default_limits : k => v if v != null }
  tenant_limits = {
    for tenant, limits in var.tenant_limits : tenant => { for k, v in limits : k => v if v != null }
  }

  values = {
    image = merge(
      { repository = var.image_repository },
      var.image_tag == null ? {} : { tag = var.image_tag },
    )
    config = {
      backend = {
        url           = var.backend_url
        protocol      = var.backend_protocol
        tenant_header = var.backend_tenant_header
      }
      wal = {
        max_size_bytes = var.wal_max_size_bytes
      }
      cardinality = {
        limits = {
          defaults = local.default_limits
          tenants  = local.tenant_limits
        }
      }
    }
    ingester = {
      replicas = var.ingester_replicas
      persistence = merge(
        { size = var.storage_size },
        var.storage_class == null ? {} : { storageClassName = var.storage_class },
      )
    }
    distributor = {
      autoscaling = {
        enabled     = true
        minReplicas = var.distributor_min_replicas
        maxReplicas = var.distributor_max_replicas
      }
    }
    secrets = {
      create   = var.secrets
      existing = var.existing_secrets
    }
    serviceMonitor = {
      enabled = var.service_monitor
    }
  }
}

resource "helm_release" "promgov" {
  name             = var.release_name
  namespace        = var.namespace
  create_namespace = var.create_namespace
  chart            = local.chart
  repository       = var.chart_repository
  version          = var.chart_version
  values           = concat([yamlencode(local.values)], var.extra_values)
  wait             = var.wait
  timeout          = var.timeout

  lifecycle {
    precondition {
      condition     = var.distributor_max_replicas >= var.distributor_min_replicas
      error_message = "distributor_max_replicas must be at least distributor_min_replicas."
    }
  }
}
