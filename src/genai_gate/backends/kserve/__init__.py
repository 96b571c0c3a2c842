"""KServe on Kubernetes: an InferenceService's canary (`canaryTrafficPercent`) behind the
same protocol as Databricks: sign-in (kubeconfig, in-cluster or GitHub OIDC), the service
as data, apply/wait/restore, the rollout state in a ConfigMap, and the logged CloudEvents
as the traffic reader."""
