variable "region" {
  description = "AWS region."
  type        = string
  default     = "eu-central-1"
}

variable "image_tag" {
  description = "Server image tag to deploy; release.yml passes the version tag."
  type        = string
}

variable "certificate_arn" {
  description = "ACM certificate for MONTI's host name in this environment."
  type        = string
}

variable "allowed_ingress_cidrs" {
  description = "Networks allowed to reach MONTI."
  type        = list(string)
}

variable "auth_issuer" {
  description = "Issuer URL of the company's OpenID Connect provider (see docs/AUTH.md)."
  type        = string
}

variable "auth_client_id" {
  description = "Public client id registered for MONTI's apps (device flow)."
  type        = string
}

variable "auth_audience" {
  description = "Audience of MONTI's API in the provider's access tokens."
  type        = string
}

variable "auth_bindings" {
  description = "Group to role bindings as JSON, for example [{\"group\":\"monti-admins\",\"role\":\"admin\"}]."
  type        = string
}

variable "alarm_emails" {
  description = "Addresses MONTI's alarms are mailed to."
  type        = list(string)
  default     = []
}
