// Types of scripts/wasm-build-id.mjs, for the test that checks the committed build ids.
export declare const ROOT: string
export declare const ASSEMBLY_ID_FILE: string
export declare const HOST_ID_FILE: string
export declare function wasmBuildId(): string
export declare function assemblyIdSource(id: string): string
export declare function hostIdSource(id: string): string
