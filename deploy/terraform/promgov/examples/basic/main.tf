# The smallest install: 3 ingesters, 2 to 10 distributors, Prometheus as the
# backend. `terraform init && terraform apply` with a kubeconfig.

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
    config_path = "~/.kube/config"
  }
}

module "promgov" {
  source = "../.."

  backend_url = "http://prometheus-server.monitoring.svc.cluster.local:9090/api/v1/write"
}

output "remote_write_url" {
  description = "Point senders' remote_write here."
  value       = module.promgov.remote_write_url
}
