# work.nix - a large strict evaluation for tests/clients/work/nix.
let
  range = n: builtins.genList (x: x) n;
  fib = n: if n < 2 then n else fib (n - 1) + fib (n - 2);
  sets = map (i: {
    name = "k${toString i}";
    value = { i = i; sq = i * i; s = "v${toString (i * 7)}"; };
  }) (range 300000);
  attrs = builtins.listToAttrs sets;
  total = builtins.foldl' (acc: k: acc + attrs.${k}.sq) 0 (builtins.attrNames attrs);
  strs = builtins.concatStringsSep "," (map (i: attrs."k${toString i}".s) (range 3000));
  sorted = builtins.sort (a: b: a < b) (map (i: (i * 7919) - (i / 13) * 100003) (range 40000));
in {
  count = builtins.length (builtins.attrNames attrs);
  inherit total;
  fib24 = fib 24;
  strlen = builtins.stringLength strs;
  first = builtins.head sorted;
  last = builtins.elemAt sorted 39999;
  hash = builtins.hashString "sha256" strs;
}
