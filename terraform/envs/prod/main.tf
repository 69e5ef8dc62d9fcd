# The prod environment: the whole MONTI stack with prod sizes.

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
    key     = "envs/prod/terraform.tfstate"
    encrypt = true
  }
}

provider "aws" {
  region = var.region
  default_tags {
    tags = {
      project     = "monti"
      managed_by  = "terraform"
      environment = "prod"
    }
  }
}

module "monti" {
  source                = "../../modules/stack"
  name                  = "monti-prod"
  image_tag             = var.image_tag
  certificate_arn       = var.certificate_arn
  allowed_ingress_cidrs = var.allowed_ingress_cidrs
  vpc_cidr              = "10.42.0.0/16"
  # Servers share one floor through Redis (MONTI_REDIS_URL), so tasks scale out.
  min_tasks                = 2
  max_tasks                = 4
  nat_gateways             = 2
  db_instance_class        = "db.m7g.large"
  db_multi_az              = true
  db_backup_retention_days = 30
  cache_node_type          = "cache.m7g.large"
  cache_replicas           = 1
  task_cpu                 = 2048
  task_memory              = 4096
  simulator_enabled        = false
  log_retention_days       = 365
  deletion_protection      = true
  # Amazon Connect agent events arrive through Firehose (docs/INGEST.md).
  amazon_connect_ingest = var.amazon_connect_ingest
  # ... and contact events (queues) through EventBridge and a second Firehose stream.
  amazon_connect_contact_events = var.public_url != ""
  connect_instance_arn          = var.connect_instance_arn
  public_url                    = var.public_url
  alarm_emails                  = var.alarm_emails
}
