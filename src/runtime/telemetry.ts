/**
 * onnxruntime-node 1.30's native library records telemetry: a device id and an events database under
 * ~/.cache/Microsoft/DeveloperTools/.onnxruntime, a `.ses` file in the temp folder, and an empty
 * `mat-debug-<pid>.log` there for every process that loads it (thousands after one test run), with error
 * lines in it when several processes find the database locked. Off unless the environment says otherwise
 * (ORT_DISABLE_TELEMETRY=0 keeps it on). The library reads the variable when it loads, hence a module of its
 * own, imported ahead of onnxruntime-node.
 */
process.env.ORT_DISABLE_TELEMETRY ??= '1';

export {};
