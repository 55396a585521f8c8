package fleetsim_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/jetprop/jetprop/testing/fleetsim"
)

func TestConfig_Validate(t *testing.T) {
	creds := []fleetsim.Credential{{ID: "a", Key: "k"}, {ID: "b", Key: "k"}}
	for _, tc := range []struct {
		name    string
		cfg     fleetsim.Config
		wantIDs []string
		wantErr string
	}{
		{name: "prefix", cfg: fleetsim.Config{URL: "tcp://x:1", Devices: 2, IDPrefix: "d"}, wantIDs: []string{"d-00000", "d-00001"}},
		{name: "credentials", cfg: fleetsim.Config{URL: "tcp://x:1", Credentials: creds}, wantIDs: []string{"a", "b"}},
		{name: "first of the credentials", cfg: fleetsim.Config{URL: "tcp://x:1", Devices: 1, Credentials: creds}, wantIDs: []string{"a"}},
		{name: "more than the credentials", cfg: fleetsim.Config{URL: "tcp://x:1", Devices: 3, Credentials: creds}, wantErr: "credentials for 2"},
		{name: "no url", cfg: fleetsim.Config{Devices: 1}, wantErr: "URL"},
		{name: "no devices", cfg: fleetsim.Config{URL: "tcp://x:1"}, wantErr: "at least one"},
		{name: "bad prefix", cfg: fleetsim.Config{URL: "tcp://x:1", Devices: 1, IDPrefix: "a/b"}, wantErr: "topic level"},
		{name: "bad tenant", cfg: fleetsim.Config{URL: "tcp://x:1", Devices: 1, Tenant: "a.b"}, wantErr: "tenant"},
		{name: "QoS 2", cfg: fleetsim.Config{URL: "tcp://x:1", Devices: 1, QoS: 2}, wantErr: "want 0 or 1"},
		{name: "negative delay", cfg: fleetsim.Config{URL: "tcp://x:1", Devices: 1, AnswerDelay: -1}, wantErr: "negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			switch {
			case tc.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Validate: %v, want an error about %q", err, tc.wantErr)
				}
			case err != nil:
				t.Fatal(err)
			case !reflect.DeepEqual(tc.cfg.IDs(), tc.wantIDs):
				t.Errorf("IDs %v, want %v", tc.cfg.IDs(), tc.wantIDs)
			}
		})
	}
}

func TestReadCredentials(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      string
		want    []fleetsim.Credential
		wantErr bool
	}{
		{name: "space", in: "gw-1 jpd_a\ngw-2\tjpd_b\n", want: []fleetsim.Credential{{"gw-1", "jpd_a"}, {"gw-2", "jpd_b"}}},
		{name: "comma, comments, blank lines", in: "# id,key\n\ngw-1,jpd_a\n", want: []fleetsim.Credential{{"gw-1", "jpd_a"}}},
		{name: "device add output", in: "PROPLET_CLIENT_ID=gw-7 PROPLET_CLIENT_KEY=jpd_x=\n", want: []fleetsim.Credential{{"gw-7", "jpd_x="}}},
		{name: "key first", in: "PROPLET_CLIENT_KEY=k PROPLET_CLIENT_ID=i\n", want: []fleetsim.Credential{{"i", "k"}}},
		{name: "one field", in: "gw-1\n", wantErr: true},
		{name: "three fields", in: "a b c\n", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := fleetsim.ReadCredentials(strings.NewReader(tc.in))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err %v, want error %t", err, tc.wantErr)
			}
			if !tc.wantErr && !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}
