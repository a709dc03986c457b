// Package e2e holds sluice's black-box tests: the real server, started with
// server.New on loopback (or the built binary, for the fan-out benchmark),
// driven over WHIP and WHEP by the pion clients of internal/client.
package e2e
