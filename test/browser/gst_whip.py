#!/usr/bin/python3
"""A GStreamer webrtcbin WHIP publisher, for the browser suite.

x264enc (Constrained Baseline, so that rtph264pay says
profile-level-id=42c01e as GStreamer publishers do) and Opus from test
sources, offered to a WHIP endpoint by webrtcbin (GStreamer 1.22, driven
from python3-gi: Debian 12 has no whipsink). It prints "OFFER-H264 <fmtp>"
once the offer is made and "CONNECTED" once ICE is connected, then runs
until SIGTERM or the given number of seconds.

Usage: gst_whip.py WHIP_URL [SECONDS] [-v]  (-v prints the offer)
"""

import os
import signal
import sys
import urllib.request

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstWebRTC", "1.0")
gi.require_version("GstSdp", "1.0")
gi.require_version("Nice", "0.1")
from gi.repository import GLib, Gst, GstSdp, GstWebRTC, Nice  # noqa: E402

PIPELINE = (
    "webrtcbin name=w bundle-policy=max-bundle "
    "videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=25/1 ! "
    "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=25 ! video/x-h264,profile=constrained-baseline ! "
    "rtph264pay config-interval=-1 pt=96 ! application/x-rtp,media=video,encoding-name=H264,payload=96 ! w. "
    "audiotestsrc is-live=true wave=sine ! audioconvert ! audioresample ! opusenc ! rtpopuspay pt=111 ! "
    "application/x-rtp,media=audio,encoding-name=OPUS,payload=111 ! w."
)


def main():
    url = sys.argv[1]
    seconds = int(sys.argv[2]) if len(sys.argv) > 2 and sys.argv[2] != "-v" else 60
    Gst.init(None)
    loop = GLib.MainLoop()
    pipe = Gst.parse_launch(PIPELINE)
    w = pipe.get_by_name("w")
    # Loopback only, like the server under test (libnice otherwise leaves
    # loopback out whenever another interface is up).
    # The ICE object is held here for the pipeline's life: pygobject takes
    # over its floating reference, and dropping it would free webrtcbin's.
    ice = w.get_property("ice-agent")
    agent = ice.get_property("agent")
    addr = Nice.Address.new()
    addr.set_from_string("127.0.0.1")
    agent.add_local_address(addr)
    failed = []

    def fail(msg):
        print("ERROR " + msg, flush=True)
        failed.append(msg)
        loop.quit()

    def post_offer():
        sdp = w.get_property("local-description").sdp.as_text()
        if "-v" in sys.argv:
            print(sdp, flush=True)
        for line in sdp.splitlines():
            if line.startswith("a=fmtp:96 "):
                print("OFFER-H264 " + line[len("a=fmtp:96 "):], flush=True)
        req = urllib.request.Request(url, data=sdp.encode(), method="POST",
                                     headers={"Content-Type": "application/sdp"})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                answer = resp.read().decode()
        except Exception as e:  # noqa: BLE001 - reported and fatal
            body = e.read().decode() if hasattr(e, "read") else ""
            fail("WHIP POST: %s %s" % (e, body.strip()))
            return False
        _, msg = GstSdp.SDPMessage.new_from_text(answer)
        desc = GstWebRTC.WebRTCSessionDescription.new(GstWebRTC.WebRTCSDPType.ANSWER, msg)
        w.emit("set-remote-description", desc, Gst.Promise.new())
        return False

    def on_gathering(*_):
        if w.get_property("ice-gathering-state") == GstWebRTC.WebRTCICEGatheringState.COMPLETE:
            GLib.idle_add(post_offer)

    def on_ice_state(*_):
        if w.get_property("ice-connection-state") in (GstWebRTC.WebRTCICEConnectionState.CONNECTED,
                                                      GstWebRTC.WebRTCICEConnectionState.COMPLETED):
            print("CONNECTED", flush=True)
        elif w.get_property("ice-connection-state") == GstWebRTC.WebRTCICEConnectionState.FAILED:
            fail("ICE failed")

    def on_offer(promise, _):
        reply = promise.get_reply()
        offer = reply.get_value("offer")
        w.emit("set-local-description", offer, Gst.Promise.new())

    def on_negotiation_needed(_):
        i = 0
        while (t := w.emit("get-transceiver", i)) is not None:
            t.set_property("direction", GstWebRTC.WebRTCRTPTransceiverDirection.SENDONLY)
            i += 1
        w.emit("create-offer", None, Gst.Promise.new_with_change_func(on_offer, None))

    def on_message(_, m):
        if m.type == Gst.MessageType.ERROR:
            err, dbg = m.parse_error()
            fail("%s (%s)" % (err.message, dbg))

    w.connect("on-negotiation-needed", on_negotiation_needed)
    w.connect("notify::ice-gathering-state", on_gathering)
    w.connect("notify::ice-connection-state", on_ice_state)
    bus = pipe.get_bus()
    bus.add_signal_watch()
    bus.connect("message", on_message)
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, loop.quit)
    GLib.timeout_add_seconds(seconds, loop.quit)
    pipe.set_state(Gst.State.PLAYING)
    loop.run()
    pipe.set_state(Gst.State.NULL)
    sys.stdout.flush()
    # No interpreter teardown: it would drop the ICE object's reference a
    # second time (a GStreamer-CRITICAL), after webrtcbin's own.
    os._exit(1 if failed else 0)


if __name__ == "__main__":
    main()
