#!/bin/bash
# NVDEC on long clips, run on the GPU machine after bench/gpu_decode.py (which unpacks
# the ffmpeg bundle that bench/gpu_decode.sh builds into /tmp/ff): the fixed cost of
# opening CUDA (a 1-frame decode), 60 s 1080p decode and transcode on all cores and on 4.
# Output: bench/results/gpu_long.log, rendered into docs/PERFORMANCE.md by bench/all.py.
set -u
FF=/tmp/ff/ffmpeg
[ -x $FF ] || { mkdir -p /tmp/ff && tar -C /tmp/ff -xJf .gpu/ffmpeg.tar.xz; }
cd /tmp
SRC="testsrc2=size=1920x1080:rate=30,noise=alls=12:allf=t+u"
t() { local s=$EPOCHREALTIME; "$@" >/dev/null 2>/tmp/err.txt || echo "FAIL $(tail -2 /tmp/err.txt)"; local e=$EPOCHREALTIME; awk "BEGIN{printf \"%.3f\", $e-$s}"; }
[ -f h264.mp4 ] || $FF -v error -y -f lavfi -i "$SRC" -t 10 -c:v libx264 -preset veryfast -pix_fmt yuv420p h264.mp4
echo "h264 1-frame cpu      $(t $FF -v error -i h264.mp4 -frames:v 1 -f null -)"
echo "h264 1-frame hwaccel  $(t $FF -v error -hwaccel cuda -i h264.mp4 -frames:v 1 -f null -)"
echo "h264 1-frame cuvid    $(t $FF -v error -c:v h264_cuvid -i h264.mp4 -frames:v 1 -f null -)"
$FF -v error -y -f lavfi -i "$SRC" -t 60 -c:v libx264 -preset veryfast -pix_fmt yuv420p h264-60.mp4
$FF -v error -y -f lavfi -i "$SRC" -t 60 -c:v libx265 -preset ultrafast -pix_fmt yuv420p -x265-params log-level=error hevc-60.mp4
for c in h264 hevc; do
  echo "$c 60s decode cpu        $(t $FF -v error -i $c-60.mp4 -f null -)"
  echo "$c 60s decode hwaccel    $(t $FF -v error -hwaccel cuda -i $c-60.mp4 -f null -)"
  echo "$c 60s decode cuvid      $(t $FF -v error -c:v ${c}_cuvid -i $c-60.mp4 -f null -)"
  echo "$c 60s decode gpu-only   $(t $FF -v error -hwaccel cuda -hwaccel_output_format cuda -i $c-60.mp4 -f null -)"
  echo "$c 60s decode cpu -threads 4 (taskset 0-3)  $(t taskset -c 0-3 $FF -v error -threads 4 -i $c-60.mp4 -f null -)"
  echo "$c 60s decode hwaccel (taskset 0-3)         $(t taskset -c 0-3 $FF -v error -hwaccel cuda -i $c-60.mp4 -f null -)"
  echo "$c 60s tx cpu            $(t $FF -v error -i $c-60.mp4 -c:v libx264 -preset veryfast -crf 23 -f null -)"
  echo "$c 60s tx hwaccel        $(t $FF -v error -hwaccel cuda -i $c-60.mp4 -c:v libx264 -preset veryfast -crf 23 -f null -)"
  echo "$c 60s tx cpu (taskset 0-3)      $(t taskset -c 0-3 $FF -v error -i $c-60.mp4 -c:v libx264 -preset veryfast -crf 23 -threads 4 -f null -)"
  echo "$c 60s tx hwaccel (taskset 0-3)  $(t taskset -c 0-3 $FF -v error -hwaccel cuda -i $c-60.mp4 -c:v libx264 -preset veryfast -crf 23 -threads 4 -f null -)"
done
