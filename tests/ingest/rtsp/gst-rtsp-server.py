#!/usr/bin/python3
# A third-party RTSP peer for the RTSP client's tests: GStreamer's RTSP
# server (Debian: gir1.2-gst-rtsp-server-1.0, python3-gst-1.0,
# gstreamer1.0-plugins-base, -good and -bad), serving a live test picture
# encoded by OpenH264 (not x264, which our simulator uses) at 15 frames a
# second, over RTP on TCP or UDP.
#
# Usage: gst-rtsp-server.py [--auth none|basic|digest] [--user U] [--password P]
# Prints "port N" once it listens on 127.0.0.1 (a free port), then serves
# /cam until killed.
import argparse
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("--auth", choices=["none", "basic", "digest"], default="none")
parser.add_argument("--user", default="admin")
parser.add_argument("--password", default="secret")
args = parser.parse_args()

Gst.init(None)
server = GstRtspServer.RTSPServer()
server.set_address("127.0.0.1")
server.set_service("0")

factory = GstRtspServer.RTSPMediaFactory()
factory.set_launch(
    "( videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=15/1 "
    "! openh264enc gop-size=30 ! h264parse ! rtph264pay name=pay0 pt=96 config-interval=1 )"
)
factory.set_shared(True)

if args.auth != "none":
    auth = GstRtspServer.RTSPAuth()
    token = GstRtspServer.RTSPToken()
    token.set_string("media.factory.role", "user")
    if args.auth == "basic":
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(args.user, args.password), token)
    else:
        auth.set_supported_methods(GstRtsp.RTSPAuthMethod.DIGEST)
        auth.add_digest(args.user, args.password, token)
    server.set_auth(auth)
    permissions = GstRtspServer.RTSPPermissions()
    permissions.add_permission_for_role("user", "media.factory.access", True)
    permissions.add_permission_for_role("user", "media.factory.construct", True)
    factory.set_permissions(permissions)

server.get_mount_points().add_factory("/cam", factory)
server.attach(None)
print(f"port {server.get_bound_port()}", flush=True)
try:
    GLib.MainLoop().run()
except KeyboardInterrupt:
    sys.exit(0)
