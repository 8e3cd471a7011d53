// Package deploy holds the tests of promgov's Helm chart (deploy/helm/promgov)
// and Terraform module (deploy/terraform/promgov),
// run by `make test` with the helm binary it builds (PROMGOV_HELM): helm lint
// and helm template with the default values and the production example,
// every rendered manifest decoded strictly with the Kubernetes API types
// (unknown fields are errors), assertions on what the chart must get right
// (the WAL volume, the gossip Service, probes, grace periods, the shared
// configuration passing `distributor check-config`), the rendered commands
// run as real processes, and the values table of the chart's README; and
// the Terraform module offline (formatting, structure, and each example
// evaluated into the values it gives helm, rendered and checked like the
// chart's own).
package deploy
