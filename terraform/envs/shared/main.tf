# What every environment shares, applied once per account after bootstrap: the server image
# repository, GitHub's OpenID Connect provider, and the roles GitHub Actions assumes, so that no
# workflow holds a long-lived AWS key.

terraform {
  required_version = ">= 1.6"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 6.0, < 7.0"
    }
  }
  backend "s3" {
    key     = "envs/shared/terraform.tfstate"
    encrypt = true
  }
}

provider "aws" {
  region = var.region
  default_tags {
    tags = {
      project    = "monti"
      managed_by = "terraform"
      stack      = "shared"
    }
  }
}

data "aws_caller_identity" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  repo       = "repo:${var.github_repository}"
}

resource "aws_kms_key" "ecr" {
  description         = "MONTI container images"
  enable_key_rotation = true
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "AccountAdministers"
      Effect    = "Allow"
      Principal = { AWS = "arn:aws:iam::${local.account_id}:root" }
      Action    = "kms:*"
      Resource  = "*"
    }]
  })
}

resource "aws_ecr_repository" "server" {
  name                 = "monti-server"
  image_tag_mutability = "IMMUTABLE"
  image_scanning_configuration {
    scan_on_push = true
  }
  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = aws_kms_key.ecr.arn
  }
}

resource "aws_ecr_lifecycle_policy" "server" {
  repository = aws_ecr_repository.server.name
  policy = jsonencode({
    rules = [{
      rulePriority = 1
      description  = "Keep the 50 newest images"
      selection = {
        tagStatus   = "any"
        countType   = "imageCountMoreThan"
        countNumber = 50
      }
      action = { type = "expire" }
    }]
  })
}

resource "aws_iam_openid_connect_provider" "github" {
  url            = "https://token.actions.githubusercontent.com"
  client_id_list = ["sts.amazonaws.com"]
}

# Trust policy for a role that GitHub Actions of this repository may assume when the token's
# subject matches.
data "aws_iam_policy_document" "github_trust" {
  for_each = {
    release = ["${local.repo}:ref:refs/tags/v*"]
    plan    = ["${local.repo}:pull_request", "${local.repo}:ref:refs/heads/main"]
    staging = ["${local.repo}:environment:staging"]
    prod    = ["${local.repo}:environment:production"]
  }
  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]
    principals {
      type        = "Federated"
      identifiers = [aws_iam_openid_connect_provider.github.arn]
    }
    condition {
      test     = "StringEquals"
      variable = "token.actions.githubusercontent.com:aud"
      values   = ["sts.amazonaws.com"]
    }
    condition {
      test     = "StringLike"
      variable = "token.actions.githubusercontent.com:sub"
      values   = each.value
    }
  }
}

resource "aws_iam_role" "github" {
  for_each             = data.aws_iam_policy_document.github_trust
  name                 = "monti-github-${each.key}"
  assume_role_policy   = each.value.json
  max_session_duration = 3600
}

# Release: push images to the one repository.
data "aws_iam_policy_document" "push_image" {
  statement {
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"] # No resource-level permissions exist for this action.
  }
  statement {
    actions = [
      "ecr:BatchCheckLayerAvailability", "ecr:InitiateLayerUpload", "ecr:UploadLayerPart",
      "ecr:CompleteLayerUpload", "ecr:PutImage", "ecr:BatchGetImage", "ecr:DescribeImages",
    ]
    resources = [aws_ecr_repository.server.arn]
  }
  statement {
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = [aws_kms_key.ecr.arn]
  }
}

resource "aws_iam_role_policy" "release" {
  name   = "push-server-image"
  role   = aws_iam_role.github["release"].id
  policy = data.aws_iam_policy_document.push_image.json
}

# Plan: read everything Terraform refreshes, and use the state lock.
resource "aws_iam_role_policy_attachment" "plan_read_only" {
  role       = aws_iam_role.github["plan"].name
  policy_arn = "arn:aws:iam::aws:policy/ReadOnlyAccess"
}

data "aws_iam_policy_document" "state" {
  statement {
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket"]
    resources = ["arn:aws:s3:::${var.state_bucket}", "arn:aws:s3:::${var.state_bucket}/*"]
  }
  statement {
    actions   = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:DescribeTable"]
    resources = ["arn:aws:dynamodb:${var.region}:${local.account_id}:table/${var.lock_table}"]
  }
  statement {
    actions   = ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.state_kms_key_arn]
  }
  statement {
    # Refreshing the generated database and cache URLs reads their values.
    actions   = ["secretsmanager:GetSecretValue"]
    resources = ["arn:aws:secretsmanager:${var.region}:${local.account_id}:secret:monti-*"]
  }
}

resource "aws_iam_role_policy" "state" {
  for_each = toset(["plan", "staging", "prod"])
  name     = "terraform-state"
  role     = aws_iam_role.github[each.key].id
  policy   = data.aws_iam_policy_document.state.json
}

# Apply: manage the environment's resources. PowerUserAccess covers everything but IAM; IAM is
# limited to MONTI's own roles and policies.
resource "aws_iam_role_policy_attachment" "apply_power_user" {
  for_each   = toset(["staging", "prod"])
  role       = aws_iam_role.github[each.key].name
  policy_arn = "arn:aws:iam::aws:policy/PowerUserAccess"
}

data "aws_iam_policy_document" "manage_monti_iam" {
  statement {
    actions = [
      "iam:CreateRole", "iam:DeleteRole", "iam:GetRole", "iam:TagRole", "iam:UntagRole",
      "iam:UpdateRole", "iam:UpdateAssumeRolePolicy", "iam:PutRolePolicy", "iam:GetRolePolicy",
      "iam:DeleteRolePolicy", "iam:ListRolePolicies", "iam:ListAttachedRolePolicies",
      "iam:AttachRolePolicy", "iam:DetachRolePolicy", "iam:ListInstanceProfilesForRole",
    ]
    resources = ["arn:aws:iam::${local.account_id}:role/monti-*"]
  }
  statement {
    actions   = ["iam:PassRole"]
    resources = ["arn:aws:iam::${local.account_id}:role/monti-*"]
    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["ecs-tasks.amazonaws.com", "monitoring.rds.amazonaws.com", "vpc-flow-logs.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "manage_monti_iam" {
  for_each = toset(["staging", "prod"])
  name     = "manage-monti-iam"
  role     = aws_iam_role.github[each.key].id
  policy   = data.aws_iam_policy_document.manage_monti_iam.json
}
