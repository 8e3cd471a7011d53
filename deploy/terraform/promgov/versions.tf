terraform {
  # OpenTofu 1.6+ works as well.
  required_version = ">= 1.5.0"

  required_providers {
    helm = {
      source = "hashicorp/helm"
      # The module only uses helm_release arguments that both major versions
      # have (values, not set blocks); the provider block is the caller's.
      version = ">= 2.12.0, < 4.0.0"
    }
  }
}
