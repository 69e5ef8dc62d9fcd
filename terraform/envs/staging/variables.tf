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
