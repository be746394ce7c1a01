#!/usr/bin/env bash
# From an empty AWS account to a stack that runs flows, in one command, then gone again.
#
#   pip install "kitaru[aws]"          # and the Pulumi CLI: curl -fsSL https://get.pulumi.com | sh
#   export PROD_JOURNAL_URL=postgresql://kitaru:...@db.example.com:5432/kitaru
#   bash examples/provision_stack.sh
#
# AWS credentials come from the usual places (AWS_PROFILE, SSO, environment). The state
# goes to $KITARU_HOME/pulumi; add --backend s3://your-state-bucket/kitaru to share it.
set -euo pipefail
kitaru=(${KITARU:-kitaru})
REGION="${REGION:-eu-west-1}"

# What would be created (nothing is, and no stack is registered).
"${kitaru[@]}" stack preview prod --flavor aws_batch --set region="$REGION"

# Bucket, ECR repository, roles, Fargate compute and job queue; then the stack `prod`
# with all of it in its settings. The journal URL stays in the environment variable.
"${kitaru[@]}" stack provision prod --flavor aws_batch --set region="$REGION" \
    --set max_vcpus=16 --journal env:PROD_JOURNAL_URL
"${kitaru[@]}" stack show prod

# Run flows on it:  KITARU_STACK=prod python examples/stack_agent/agent.py kites

# Delete the infrastructure and the stack (the bucket must be empty, unless provisioned
# with --set force_destroy=true).
"${kitaru[@]}" stack destroy prod --yes
