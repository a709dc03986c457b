package server

import (
	"github.com/sluice-media/sluice/internal/config"
	"github.com/sluice-media/sluice/internal/httpapi"
	"github.com/sluice-media/sluice/internal/rtc"
)

// engineConfig is the WebRTC engine's share of the configuration, in the
// engine's own type: rtc imports no config (and so links no output).
func engineConfig(c config.WebRTC) rtc.Config {
	out := rtc.Config{
		UDPPort:    c.UDPPort,
		TCPEnabled: c.TCPEnabled,
		TCPPort:    c.TCPPort,
		ListenIPs:  c.ListenIPs,
		NAT1To1IPs: c.NAT1To1IPs,
		Consent:    c.ConsentTimeout,
	}
	for _, s := range c.ICEServers {
		out.ICEServers = append(out.ICEServers, rtc.ICEServer{URLs: s.URLs, Username: s.Username, Credential: s.Credential})
	}
	return out
}

// linkICEServers are the ICE servers the HTTP edge announces in Link
// headers (http.ice_servers), in httpapi's own type.
func linkICEServers(list []config.LinkICEServer) []httpapi.ICEServer {
	var out []httpapi.ICEServer
	for _, s := range list {
		out = append(out, httpapi.ICEServer{URLs: s.URLs, Username: s.Username, Credential: s.Credential,
			TURNSecret: s.TURNSecret, TURNTTL: s.TURNTTL})
	}
	return out
}
