package bench

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Server start and stop bounds.
const (
	serverReadyTimeout = 15 * time.Second
	serverStopTimeout  = 10 * time.Second
)

// serverProc is a server under test running as a child process on
// loopback.
type serverProc struct {
	name       string
	cmd        *exec.Cmd
	exited     chan error
	logPath    string
	whip, whep string
	metrics    string // Prometheus endpoint, "" when unknown
	alloc      string // bytes allocated so far (see scrapeAllocated), "" when unknown
	rtsp       string // RTSP URL template of the stream, "" when off
}

// pid returns the child's process id.
func (s *serverProc) pid() int { return s.cmd.Process.Pid }

// startServer runs bin with args, its output in logPath, and waits until
// readyURL answers (any status when anyStatus, else 200).
func startServer(name, bin string, args []string, logPath, readyURL string, anyStatus bool) (*serverProc, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the child keeps its own descriptor
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = childEnv()
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	s := &serverProc{name: name, cmd: cmd, exited: make(chan error, 1), logPath: logPath}
	go func() { s.exited <- cmd.Wait() }()

	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: time.Second}
	deadline := time.Now().Add(serverReadyTimeout)
	for {
		resp, err := hc.Get(readyURL)
		if err == nil {
			resp.Body.Close()
			if anyStatus || resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		if time.Now().After(deadline) {
			_ = s.stop()
			return nil, fmt.Errorf("%s did not answer %s within %v: %v%s", name, readyURL, serverReadyTimeout, err, s.logTail())
		}
		select {
		case err := <-s.exited:
			s.exited <- err
			return nil, fmt.Errorf("%s exited before serving: %v%s", name, err, s.logTail())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// stop sends SIGTERM and waits; after serverStopTimeout it kills.
func (s *serverProc) stop() error {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
		return nil
	case <-time.After(serverStopTimeout):
		_ = s.cmd.Process.Kill()
		<-s.exited
		return fmt.Errorf("%s did not stop within %v of SIGTERM; killed", s.name, serverStopTimeout)
	}
}

// logTail returns the last lines of the server's log, for errors.
func (s *serverProc) logTail() string {
	raw, err := os.ReadFile(s.logPath)
	if err != nil || len(raw) == 0 {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(raw), "\n"), "\n")
	return "\n" + s.name + " log (" + s.logPath + "), last lines:\n" + strings.Join(lines[max(len(lines)-10, 0):], "\n")
}

// freePorts returns a TCP and a UDP port that were free on 127.0.0.1 a
// moment ago.
func freePorts() (tcp, udp int, err error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, 0, err
	}
	defer l.Close()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return 0, 0, err
	}
	defer c.Close()
	return l.Addr().(*net.TCPAddr).Port, c.LocalAddr().(*net.UDPAddr).Port, nil
}

// startSluiceProc runs the sluice binary on loopback: one UDP port, warn
// logs, and a per-IP session limit high enough for every viewer of a run
// coming from 127.0.0.1.
func startSluiceProc(bin string, extra []string, dir string) (*serverProc, error) {
	httpPort, udpPort, err := freePorts()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(httpPort)
	rtspPort, _, err := freePorts()
	if err != nil {
		return nil, err
	}
	rtspAddr := "127.0.0.1:" + strconv.Itoa(rtspPort)
	args := append([]string{
		"-http.listen", addr,
		"-webrtc.udp_port", strconv.Itoa(udpPort),
		"-webrtc.listen_ips", "127.0.0.1",
		"-rtmp.listen", "127.0.0.1:0", "-srt.listen", "127.0.0.1:0",
		"-log.level", "warn",
		"-limits.max_sessions_per_ip", strconv.Itoa(MaxViewers + 10),
		// The other protocols' listeners on free or OS-picked ports (TCP
		// only for RTSP): two compares on one machine must not collide.
		"-rtsp.listen", rtspAddr, "-rtsp.udp_rtp_port", "0", "-rtsp.udp_rtcp_port", "0",
	}, extra...)
	s, err := startServer("sluice", bin, args, filepath.Join(dir, "sluice.log"), "http://"+addr+"/healthz", false)
	if err != nil {
		return nil, err
	}
	s.whip, s.whep = "http://"+addr+"/whip/bench{n}", "http://"+addr+"/whep/bench{n}"
	s.metrics = "http://" + addr + "/metrics"
	s.alloc = s.metrics
	s.rtsp = "rtsp://" + rtspAddr + "/bench{n}"
	return s, nil
}

// startMediaMTXProc runs MediaMTX with a configuration derived from
// template: the same settings with the WebRTC HTTP and UDP addresses moved
// to free loopback ports, its pprof server on a free port (the bench reads
// the bytes it allocated there; nothing else runs until asked) and, with
// rtsp, its RTSP server on (TCP only) on a free port.
func startMediaMTXProc(bin, template, dir string, rtsp bool) (*serverProc, error) {
	httpPort, udpPort, err := freePorts()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(httpPort)
	rtspAddr := ""
	if rtsp {
		p, _, err := freePorts()
		if err != nil {
			return nil, err
		}
		rtspAddr = "127.0.0.1:" + strconv.Itoa(p)
	}
	pprofPort, _, err := freePorts()
	if err != nil {
		return nil, err
	}
	pprofAddr := "127.0.0.1:" + strconv.Itoa(pprofPort)
	cfg, err := mediaMTXConfig(template, addr, "127.0.0.1:"+strconv.Itoa(udpPort), rtspAddr, pprofAddr)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "mediamtx.yml")
	if err := os.WriteFile(path, cfg, 0o644); err != nil {
		return nil, err
	}
	// MediaMTX answers 404 on / while it runs with the WebRTC server only.
	s, err := startServer("MediaMTX", bin, []string{path}, filepath.Join(dir, "mediamtx.log"), "http://"+addr+"/", true)
	if err != nil {
		return nil, err
	}
	s.whip, s.whep = "http://"+addr+"/bench{n}/whip", "http://"+addr+"/bench{n}/whep"
	s.alloc = "http://" + pprofAddr + "/debug/pprof/heap?debug=1"
	if rtsp {
		s.rtsp = "rtsp://" + rtspAddr + "/bench{n}"
	}
	return s, nil
}

// mediaMTXConfig rewrites the top-level webrtcAddress and
// webrtcLocalUDPAddress of a MediaMTX YAML configuration, keeping every
// other line. With rtspAddr, it turns RTSP on there, over TCP only (no
// UDP ports to collide with), setting or adding rtsp, rtspAddress and
// rtspTransports; with pprofAddr, the pprof server (pprof, pprofAddress).
func mediaMTXConfig(template, httpAddr, udpAddr, rtspAddr, pprofAddr string) ([]byte, error) {
	f, err := os.Open(template)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	set := map[string]string{"webrtcAddress": httpAddr, "webrtcLocalUDPAddress": udpAddr}
	var add []string // keys set if present, else appended
	if rtspAddr != "" {
		set["rtsp"], set["rtspAddress"], set["rtspTransports"] = "yes", rtspAddr, "[tcp]"
		add = []string{"rtsp", "rtspAddress", "rtspTransports"}
	}
	if pprofAddr != "" {
		set["pprof"], set["pprofAddress"] = "yes", pprofAddr
		add = append(add, "pprof", "pprofAddress")
	}
	seen := map[string]bool{}
	var out strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		key, _, ok := strings.Cut(line, ":")
		if v, want := set[key]; ok && want {
			line = key + ": " + v
			seen[key] = true
		}
		out.WriteString(line + "\n")
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	for _, k := range []string{"webrtcAddress", "webrtcLocalUDPAddress"} {
		if !seen[k] {
			return nil, errors.New(template + ": no top-level " + k + " to set")
		}
	}
	for _, k := range add {
		if !seen[k] {
			out.WriteString(k + ": " + set[k] + "\n")
		}
	}
	return []byte(out.String()), nil
}

// childEnv is this process's environment without SLUICE_* variables: a
// benchmarked server runs with exactly the flags the bench gives it.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SLUICE_") {
			env = append(env, kv)
		}
	}
	return env
}
