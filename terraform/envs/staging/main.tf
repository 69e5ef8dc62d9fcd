# The staging environment: the whole MONTI stack with staging sizes.

terraform {
  required_version = ">= 1.6"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 6.0, < 7.0"
    }
    random = {
      source  = "hashicorp/random"
      version = ">= 3.6, < 4.0"
    }
  }
  # Bucket, region, lock table and KMS key come from backend.hcl (see ../../backend.hcl.example).
  backend "s3" {
    key     = "envs/staging/terraform.tfstate"
    encrypt = true
  }
}

provider "aws" {
  region = var.region
  default_tags {
    tags = {
      project     = "monti"
      managed_by  = "terraform"
      environment = "staging"
    }
  }
}

module "monti" {
  source                = "../../modules/stack"
  name                  = "monti-staging"
  image_tag             = var.image_tag
  certificate_arn       = var.certificate_arn
  allowed_ingress_cidrs = var.allowed_ingress_cidrs
  vpc_cidr              = "10.41.0.0/16"
  # Staging runs the simulator, and every task would run its own on the same agents: one task.
  # (Production tasks share one floor through Redis and scale out.)
  min_tasks                = 1
  max_tasks                = 1
  nat_gateways             = 1
  db_instance_class        = "db.t4g.small"
  db_multi_az              = false
  db_backup_retention_days = 7
  cache_node_type          = "cache.t4g.micro"
  cache_replicas           = 0
  task_cpu                 = 512
  task_memory              = 1024
  simulator_enabled        = true
  log_retention_days       = 365
  deletion_protection      = false
  alarm_emails             = var.alarm_emails
}
