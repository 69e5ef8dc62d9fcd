variable "region" {
  description = "AWS region."
  type        = string
  default     = "eu-central-1"
}

variable "github_repository" {
  description = "The GitHub repository allowed to assume the CI roles, as owner/name."
  type        = string
}

variable "state_bucket" {
  description = "State bucket from bootstrap."
  type        = string
}

variable "lock_table" {
  description = "Lock table from bootstrap."
  type        = string
  default     = "monti-terraform-locks"
}

variable "state_kms_key_arn" {
  description = "State KMS key from bootstrap."
  type        = string
}
