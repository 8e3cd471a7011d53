{{/* Chart name, truncated for label values. */}}
{{- define "promgov.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: <release>-<chart> unless the release already holds it. */}}
{{- define "promgov.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Labels of every object. */}}
{{- define "promgov.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "promgov.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Labels every pod of the release carries: the gossip Service selects them all. */}}
{{- define "promgov.selectorLabels" -}}
app.kubernetes.io/name: {{ include "promgov.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Selector labels of one component: include with (dict "ctx" $ "component" "ingester"). */}}
{{- define "promgov.componentSelectorLabels" -}}
{{ include "promgov.selectorLabels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "promgov.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "promgov.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "promgov.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{/* Names of the Services. */}}
{{- define "promgov.gossipService" -}}{{ include "promgov.fullname" . }}-gossip{{- end }}
{{- define "promgov.ingesterService" -}}{{ include "promgov.fullname" . }}-ingester{{- end }}
{{- define "promgov.distributorService" -}}{{ include "promgov.fullname" . }}-distributor{{- end }}
{{- define "promgov.configMap" -}}{{ include "promgov.fullname" . }}-config{{- end }}

{{/* Where the shared configuration is mounted (a directory, so ConfigMap updates reach the pod). */}}
{{- define "promgov.configDir" -}}/etc/promgov/config{{- end }}
{{- define "promgov.configFile" -}}{{ include "promgov.configDir" . }}/promgov.yml{{- end }}

{{/* The WAL volume's mount point and the WAL directory on it. */}}
{{- define "promgov.dataDir" -}}/data{{- end }}
{{- define "promgov.walDir" -}}{{ include "promgov.dataDir" . }}/wal{{- end }}

{{/* Flags every promgov process gets: the configuration and the memberlist membership. */}}
{{- define "promgov.commonArgs" -}}
- --config.file={{ include "promgov.configFile" . }}
- --memberlist.bind-address=0.0.0.0:{{ .Values.ports.gossip }}
- --memberlist.advertise-address=$(POD_IP):{{ .Values.ports.gossip }}
- --memberlist.node-name=$(POD_NAME)
- --memberlist.join={{ include "promgov.gossipService" . }}.{{ .Release.Namespace }}.svc.{{ .Values.clusterDomain }}:{{ .Values.ports.gossip }}
- --memberlist.cluster-label={{ .Values.memberlist.clusterLabel | default (printf "%s.%s" .Release.Namespace (include "promgov.fullname" .)) }}
{{- include "promgov.securityArgs" . }}
{{- end }}

{{/* The security parts (values security.*) every pod has. */}}
{{- define "promgov.securityParts" -}}
{{- $s := .Values.security -}}
{{- $parts := dict -}}
{{- if $s.webConfig.secret }}{{ $_ := set $parts "web" $s.webConfig.secret }}{{ end -}}
{{- if $s.auth.secret }}{{ $_ := set $parts "auth" $s.auth.secret }}{{ end -}}
{{- if $s.grpcTLS.secret }}{{ $_ := set $parts "grpc-tls" $s.grpcTLS.secret }}{{ end -}}
{{- if $s.gossip.secret }}{{ $_ := set $parts "gossip" $s.gossip.secret }}{{ end -}}
{{- toYaml $parts -}}
{{- end }}

{{/* Flags of the security parts every pod gets (ingesters add promgov.grpcServerTLSArgs). */}}
{{- define "promgov.securityArgs" -}}
{{- $s := .Values.security }}
{{- if $s.webConfig.secret }}
- --web.config.file=/etc/promgov/web/web.yml
{{- end }}
{{- if $s.auth.secret }}
- --auth.config-file=/etc/promgov/auth/identities.yml
{{- end }}
{{- if $s.grpcTLS.secret }}
- --ingester.client.tls-enabled
- --ingester.client.tls-cert-path=/etc/promgov/grpc-tls/tls.crt
- --ingester.client.tls-key-path=/etc/promgov/grpc-tls/tls.key
- --ingester.client.tls-ca-path=/etc/promgov/grpc-tls/ca.crt
{{- with $s.grpcTLS.serverName }}
- --ingester.client.tls-server-name={{ . }}
{{- end }}
{{- end }}
{{- if $s.gossip.secret }}
- --memberlist.encryption-key-file=/etc/promgov/gossip/key
{{- with $s.gossip.rotationKeys }}
- --memberlist.encryption-rotation-key-files={{ range $i, $k := . }}{{ if $i }},{{ end }}/etc/promgov/gossip/{{ $k }}{{ end }}
{{- end }}
{{- end }}
{{- end }}

{{/* The ingesters' gRPC server TLS flags. */}}
{{- define "promgov.grpcServerTLSArgs" -}}
{{- if .Values.security.grpcTLS.secret }}
- --grpc.tls-cert-path=/etc/promgov/grpc-tls/tls.crt
- --grpc.tls-key-path=/etc/promgov/grpc-tls/tls.key
- --grpc.tls-ca-path=/etc/promgov/grpc-tls/ca.crt
{{- end }}
{{- end }}

{{/* Environment every promgov process gets (used by the flags above). */}}
{{- define "promgov.commonEnv" -}}
- name: POD_IP
  valueFrom:
    fieldRef: {fieldPath: status.podIP}
- name: POD_NAME
  valueFrom:
    fieldRef: {fieldPath: metadata.name}
{{- end }}

{{/*
The plugins volume's source (values plugins: configMap, existingClaim or
volume), or "" when none is set; more than one fails the render.
*/}}
{{- define "promgov.pluginsSource" -}}
{{- $p := .Values.plugins -}}
{{- $set := list -}}
{{- if $p.configMap }}{{ $set = append $set "configMap" }}{{ end -}}
{{- if $p.existingClaim }}{{ $set = append $set "existingClaim" }}{{ end -}}
{{- if $p.volume }}{{ $set = append $set "volume" }}{{ end -}}
{{- if gt (len $set) 1 -}}
{{- fail (printf "plugins: %s are set; set only one of plugins.configMap, plugins.existingClaim or plugins.volume (docs/plugins.md#deploying-plugins)" (join ", " $set)) -}}
{{- end -}}
{{- if and $set (not (hasPrefix "/" ($p.mountPath | toString))) -}}
{{- fail (printf "plugins.mountPath: %q is not an absolute path; use e.g. /etc/promgov/plugins" ($p.mountPath | toString)) -}}
{{- end -}}
{{- if $p.configMap -}}
configMap:
  name: {{ $p.configMap }}
{{- else if $p.existingClaim -}}
persistentVolumeClaim:
  claimName: {{ $p.existingClaim }}
  readOnly: true
{{- else if $p.volume -}}
{{ toYaml $p.volume }}
{{- end -}}
{{- end }}

{{/* Volumes every pod has: the configuration, the secrets, /tmp; the plugins when set. */}}
{{- define "promgov.volumes" -}}
- name: config
  configMap:
    name: {{ include "promgov.configMap" . }}
- name: tmp
  emptyDir: {}
{{- if .Values.secrets.create }}
- name: secret-{{ include "promgov.fullname" . }}
  secret:
    secretName: {{ include "promgov.fullname" . }}
{{- end }}
{{- range .Values.secrets.existing }}
- name: secret-{{ . }}
  secret:
    secretName: {{ . }}
{{- end }}
{{- range $part, $secret := include "promgov.securityParts" . | fromYaml }}
- name: security-{{ $part }}
  secret:
    secretName: {{ $secret }}
{{- end }}
{{- with include "promgov.pluginsSource" . }}
- name: plugins
  {{- . | nindent 2 }}
{{- end }}
{{- end }}

{{- define "promgov.volumeMounts" -}}
- name: config
  mountPath: {{ include "promgov.configDir" . }}
  readOnly: true
- name: tmp
  mountPath: /tmp
{{- if .Values.secrets.create }}
- name: secret-{{ include "promgov.fullname" . }}
  mountPath: /etc/promgov/secrets/{{ include "promgov.fullname" . }}
  readOnly: true
{{- end }}
{{- range .Values.secrets.existing }}
- name: secret-{{ . }}
  mountPath: /etc/promgov/secrets/{{ . }}
  readOnly: true
{{- end }}
{{- range $part, $secret := include "promgov.securityParts" . | fromYaml }}
- name: security-{{ $part }}
  mountPath: /etc/promgov/{{ $part }}
  readOnly: true
{{- end }}
{{- if include "promgov.pluginsSource" . }}
- name: plugins
  mountPath: {{ .Values.plugins.mountPath }}
  readOnly: true
{{- end }}
{{- end }}

{{/* The reloader sidecar: include with (dict "ctx" $ "port" <HTTP port>). */}}
{{- define "promgov.reloader" -}}
{{- if .ctx.Values.reload.enabled -}}
{{- $s := .ctx.Values.security -}}
{{- if or $s.webConfig.secret $s.auth.secret -}}
{{- fail "reload.enabled: the reloader sidecar POSTs /-/reload over plain HTTP without credentials, which a web config (TLS or basic auth, security.webConfig) or identities (security.auth, /-/reload needs the admin role) refuse; set reload.enabled=false and reload with SIGHUP or an admin POST /-/reload after a ConfigMap change (docs/security.md#helm)" -}}
{{- end -}}
- name: reloader
  image: {{ include "promgov.image" .ctx }}
  imagePullPolicy: {{ .ctx.Values.image.pullPolicy }}
  command: [/bin/reloader]
  args:
    - --file={{ include "promgov.configFile" .ctx }}
    - --url=http://127.0.0.1:{{ .port }}/-/reload
    - --interval={{ .ctx.Values.reload.interval }}
  volumeMounts:
    - name: config
      mountPath: {{ include "promgov.configDir" .ctx }}
      readOnly: true
  resources:
    {{- toYaml .ctx.Values.reload.resources | nindent 4 }}
  securityContext:
    {{- toYaml .ctx.Values.containerSecurityContext | nindent 4 }}
{{- end }}
{{- end }}

{{/* Probes of a promgov container on its HTTP port (named http-metrics). */}}
{{- define "promgov.probes" -}}
readinessProbe:
  httpGet: {path: /-/ready, port: http-metrics{{ if .Values.security.webConfig.tls }}, scheme: HTTPS{{ end }}}
  periodSeconds: 5
  failureThreshold: 3
livenessProbe:
  httpGet: {path: /-/healthy, port: http-metrics{{ if .Values.security.webConfig.tls }}, scheme: HTTPS{{ end }}}
  periodSeconds: 10
  timeoutSeconds: 5
  failureThreshold: 6
startupProbe:
  httpGet: {path: /-/healthy, port: http-metrics{{ if .Values.security.webConfig.tls }}, scheme: HTTPS{{ end }}}
  periodSeconds: 5
  failureThreshold: 60
{{- end }}

{{/* Soft or hard anti-affinity by node for one component. */}}
{{- define "promgov.antiAffinity" -}}
podAntiAffinity:
{{- if eq .mode "hard" }}
  requiredDuringSchedulingIgnoredDuringExecution:
    - topologyKey: kubernetes.io/hostname
      labelSelector:
        matchLabels:
          {{- include "promgov.componentSelectorLabels" . | nindent 10 }}
{{- else }}
  preferredDuringSchedulingIgnoredDuringExecution:
    - weight: 100
      podAffinityTerm:
        topologyKey: kubernetes.io/hostname
        labelSelector:
          matchLabels:
            {{- include "promgov.componentSelectorLabels" . | nindent 12 }}
{{- end }}
{{- end }}
