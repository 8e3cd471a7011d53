output "release_name" {
  description = "Name of the Helm release."
  value       = helm_release.promgov.name
}

output "namespace" {
  description = "Namespace promgov runs in."
  value       = helm_release.promgov.namespace
}

output "remote_write_url" {
  description = "Where senders push remote write inside the cluster (the distributor Service, chart default port)."
  value       = "http://${local.fullname}-distributor.${var.namespace}.svc.cluster.local:9500/api/v1/write"
}
