#!/usr/bin/python3
"""Hearth test fixture: an RTSP server (GStreamer gst-rtsp-server) serving an H.264 test pattern.

    rtsp-server.py --port 0 --path /cam --fps 15 --gop-seconds 10 --size 1280x720 --bitrate 2000

Prints one line `READY rtsp://127.0.0.1:PORT/PATH` on stdout once it listens (PORT is the bound
port: pass --port 0 for a free one). Basic auth is enabled when HEARTH_RTSP_USER and
HEARTH_RTSP_PASS are set in the environment: credentials never go on the command line, because
/proc/PID/cmdline is world-readable. Stops on SIGTERM/SIGINT. Tests and benchmarks only.

On SIGUSR1 it forces a keyframe (a GstForceKeyUnit event sent upstream into every running x264enc)
and prints `FORCED <n>`. Every keyframe the encoder emits is printed as
`KEYFRAME frame=<index> gap=<frames since the previous keyframe> forced=<0|1>` (forced: the first
keyframe after a force request), so tests can tell a requested keyframe from a scheduled one.
"""
import argparse
import os
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
gi.require_version("GstVideo", "1.0")
from gi.repository import GLib, Gst, GstRtspServer, GstVideo  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--path", default="/cam")
    ap.add_argument("--fps", type=int, default=15)
    ap.add_argument("--gop-seconds", type=float, default=10.0)
    ap.add_argument("--size", default="1280x720")
    ap.add_argument("--bitrate", type=int, default=2000, help="kbit/s")
    ap.add_argument("--pattern", default="smpte")
    ap.add_argument("--shared", action="store_true", help="one encoder for all clients")
    ap.add_argument("--slices", type=int, default=0, help="slices per picture (0: x264's choice)")
    ap.add_argument(
        "--sps-every-keyframe", action="store_true", help="SPS/PPS in band before every keyframe"
    )
    a = ap.parse_args()
    w, h = (int(x) for x in a.size.split("x"))
    if not a.path.startswith("/") or any(c in a.path for c in " !\"'"):
        print("bad --path", file=sys.stderr)
        return 2
    key_int = max(1, round(a.gop_seconds * a.fps))

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(a.port))
    factory = GstRtspServer.RTSPMediaFactory()
    launch = (
        f"( videotestsrc is-live=true pattern={a.pattern} "
        f"! video/x-raw,width={w},height={h},framerate={a.fps}/1,format=I420 "
        f"! x264enc name=enc tune=zerolatency speed-preset=ultrafast key-int-max={key_int} bitrate={a.bitrate} "
        f"bframes=0 byte-stream=true "
        f"{f'option-string=slices={a.slices} ' if a.slices > 0 else ''}"
        f"! video/x-h264,profile=constrained-baseline "
        f"! rtph264pay name=pay0 pt=96 config-interval={-1 if a.sps_every_keyframe else 1} )"
    )
    factory.set_launch(launch)
    factory.set_shared(a.shared)

    # Keyframe bookkeeping per encoder: frames seen, index of the last keyframe, force pending.
    encoders = []
    forced_total = [0]

    def on_configure(_factory, media):
        enc = media.get_element().get_by_name("enc")
        if enc is None:
            return
        st = {"enc": enc, "frames": 0, "last_key": None, "pending": False}
        encoders.append(st)

        def probe(_pad, info):
            buf = info.get_buffer()
            if buf is not None:
                if not buf.has_flags(Gst.BufferFlags.DELTA_UNIT):
                    gap = st["frames"] - st["last_key"] if st["last_key"] is not None else 0
                    forced = 1 if st["pending"] else 0
                    st["pending"] = False
                    st["last_key"] = st["frames"]
                    sys.stdout.write(f"KEYFRAME frame={st['frames']} gap={gap} forced={forced}\n")
                    sys.stdout.flush()
                st["frames"] += 1
            return Gst.PadProbeReturn.OK

        enc.get_static_pad("src").add_probe(Gst.PadProbeType.BUFFER, probe)

        def on_unprepared(_media):
            if st in encoders:
                encoders.remove(st)

        media.connect("unprepared", on_unprepared)

    factory.connect("media-configure", on_configure)

    def force_keyframe():
        for st in list(encoders):
            ev = GstVideo.video_event_new_upstream_force_key_unit(Gst.CLOCK_TIME_NONE, True, 0)
            st["pending"] = True
            st["enc"].get_static_pad("src").send_event(ev)
        forced_total[0] += 1
        sys.stdout.write(f"FORCED {forced_total[0]} encoders={len(encoders)}\n")
        sys.stdout.flush()
        return GLib.SOURCE_CONTINUE

    user = os.environ.get("HEARTH_RTSP_USER")
    password = os.environ.get("HEARTH_RTSP_PASS")
    if user is not None or password is not None:
        if not user or not password:
            print("HEARTH_RTSP_USER and HEARTH_RTSP_PASS must both be set", file=sys.stderr)
            return 2
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, "viewer")
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(user, password), token)
        server.set_auth(auth)
        perms = GstRtspServer.RTSPPermissions()
        perms.add_role("viewer")
        perms.add_permission_for_role("viewer", GstRtspServer.RTSP_PERM_MEDIA_FACTORY_ACCESS, True)
        perms.add_permission_for_role("viewer", GstRtspServer.RTSP_PERM_MEDIA_FACTORY_CONSTRUCT, True)
        factory.set_permissions(perms)
        del password

    server.get_mount_points().add_factory(a.path, factory)
    if server.attach(None) == 0:
        print("cannot listen", file=sys.stderr)
        return 1
    loop = GLib.MainLoop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, loop.quit)
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGUSR1, force_keyframe)
    print(f"READY rtsp://127.0.0.1:{server.get_bound_port()}{a.path}", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
