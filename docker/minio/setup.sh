#!/bin/sh
# One-shot (service minio-setup, image minio/mc): create mediaflow's bucket (private)
# and a MinIO user for mediaflow that may use that bucket and nothing else, so the
# API and workers never hold the root credentials. Idempotent: safe on every
# `docker compose up`; a changed MEDIAFLOW_S3_SECRET_KEY is applied on the next run.
set -eu

: "${MINIO_ROOT_USER:?}" "${MINIO_ROOT_PASSWORD:?}"
: "${S3_BUCKET:?}" "${S3_ACCESS_KEY:?}" "${S3_SECRET_KEY:?}"

attempt=0
until mc alias set local http://minio:9000 "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD" > /dev/null; do
    attempt=$((attempt + 1))
    [ "$attempt" -ge 30 ] && { echo "MinIO never accepted the root credentials" >&2; exit 1; }
    sleep 2
done

mc mb --ignore-existing "local/$S3_BUCKET"
mc anonymous set none "local/$S3_BUCKET"

# Built with the shell's printf: the mc image has few tools besides mc itself.
policy=/tmp/bucket-policy.json
printf '%s\n' \
    '{' \
    '  "Version": "2012-10-17",' \
    '  "Statement": [' \
    '    {"Effect": "Allow",' \
    '     "Action": ["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"],' \
    "     \"Resource\": [\"arn:aws:s3:::$S3_BUCKET\"]}," \
    '    {"Effect": "Allow",' \
    '     "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject",' \
    '                "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],' \
    "     \"Resource\": [\"arn:aws:s3:::$S3_BUCKET/*\"]}" \
    '  ]' \
    '}' > "$policy"
mc admin policy create local mediaflow "$policy"
mc admin user add local "$S3_ACCESS_KEY" "$S3_SECRET_KEY"
if ! out="$(mc admin policy attach local mediaflow --user "$S3_ACCESS_KEY" 2>&1)"; then
    case "$out" in
        *already*) echo "policy mediaflow is already attached to $S3_ACCESS_KEY" ;;
        *) echo "$out" >&2; exit 1 ;;
    esac
fi
echo "bucket $S3_BUCKET ready for user $S3_ACCESS_KEY"
