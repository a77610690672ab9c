{{- define "coalmine.fullname" -}}
{{- default .Release.Name .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "coalmine.labels" -}}
app.kubernetes.io/name: coalmine
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end -}}

{{- define "coalmine.selector" -}}
app.kubernetes.io/name: coalmine
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "coalmine.signingSecret" -}}
{{- .Values.webhookSigning.existingSecret | default (printf "%s-webhook-signing" (include "coalmine.fullname" .)) -}}
{{- end -}}

{{- define "coalmine.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- .Values.serviceAccount.name | default (include "coalmine.fullname" .) -}}
{{- else -}}
{{- .Values.serviceAccount.name | default "default" -}}
{{- end -}}
{{- end -}}

{{/*
The controller's flags: `flags`, overridden by the Flagger chart's value names when they are set
(docs/install.md lists the mapping). Rendered as YAML; `include … | fromYaml` reads it back.
*/}}
{{- define "coalmine.flags" -}}
{{- $flags := deepCopy .Values.flags -}}
{{- $v := .Values -}}
{{- $aliases := dict
  "metricsServer" "metrics-server" "meshProvider" "mesh-provider" "namespace" "namespace"
  "selectorLabels" "selector-labels" "logLevel" "log-level" "zapEncoding" "zap-encoding"
  "clusterName" "cluster-name" "eventWebhook" "event-webhook"
  "includeLabelPrefix" "include-label-prefix" "ingressAnnotationsPrefix" "ingress-annotations-prefix"
  "ingressClass" "ingress-class" "controlLoopInterval" "control-loop-interval"
  "threadiness" "threadiness" "kubeconfigQPS" "kubeconfig-qps" "kubeconfigBurst" "kubeconfig-burst"
  "noCrossNamespaceRefs" "no-cross-namespace-refs" "listenAddress" "listen-address" -}}
{{- range $key, $flag := $aliases -}}
{{- if and (hasKey $v $key) (ne (toString (index $v $key)) "") (ne (toString (index $v $key)) "<nil>") -}}
{{- $_ := set $flags $flag (index $v $key) -}}
{{- end -}}
{{- end -}}
{{- $nested := list
  (list "slack" "url" "slack-url") (list "slack" "user" "slack-user")
  (list "slack" "channel" "slack-channel") (list "slack" "proxy" "slack-proxy-url")
  (list "slack" "proxyUrl" "slack-proxy-url") (list "slack" "token" "slack-token")
  (list "msteams" "url" "msteams-url") (list "msteams" "proxy" "msteams-proxy-url")
  (list "msteams" "proxyUrl" "msteams-proxy-url")
  (list "leaderElection" "enabled" "enable-leader-election")
  (list "configTracking" "enabled" "enable-config-tracking") -}}
{{- range $nested -}}
{{- $section := index $v (index . 0) | default dict -}}
{{- $value := index $section (index . 1) -}}
{{- if and (hasKey $section (index . 1)) (ne (toString $value) "") (ne (toString $value) "<nil>") -}}
{{- $_ := set $flags (index . 2) $value -}}
{{- end -}}
{{- end -}}
{{- $controlplane := include "coalmine.controlplaneKubeconfig" . | fromYaml -}}
{{- if $controlplane.secretName -}}
{{- $_ := set $flags "kubeconfig-service-mesh" (printf "/tmp/controlplane/%s" ($controlplane.key | default "kubeconfig")) -}}
{{- end -}}
{{- if eq (toString (index $flags "leader-election-namespace")) "" -}}
{{- $_ := set $flags "leader-election-namespace" .Release.Namespace -}}
{{- end -}}
{{- toYaml $flags -}}
{{- end -}}

{{/* The port of `--listen-address` (":8080", "0.0.0.0:9090"): the container's port. */}}
{{- define "coalmine.port" -}}
{{- $flags := include "coalmine.flags" . | fromYaml -}}
{{- $address := toString (index $flags "listen-address") | default ":8080" -}}
{{- regexFind "[0-9]+$" $address | default "8080" -}}
{{- end -}}

{{/*
The mesh cluster's kubeconfig Secret: Flagger's `controlplane.kubeconfig` (`secretName`, `key`), or
the `istio.kubeconfig` of Flagger's older charts.
*/}}
{{- define "coalmine.controlplaneKubeconfig" -}}
{{- $new := ((.Values.controlplane | default dict).kubeconfig | default dict) -}}
{{- $old := ((.Values.istio | default dict).kubeconfig | default dict) -}}
{{- toYaml (ternary $new $old (not (empty $new.secretName))) -}}
{{- end -}}
